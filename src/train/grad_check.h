// Finite-difference gradient checking in double precision, for the tests: the training ops are
// templates, so the checked code is the training code run with T = double.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace mla::train {

// 4-point central difference of f() with respect to x[i] (f reads x), error O(h^4).
template <typename F>
double numeric_derivative(std::vector<double>& x, size_t i, F&& f, double h = 1e-4) {
  const double saved = x[i];
  auto at = [&](double delta) {
    x[i] = saved + delta;
    return f();
  };
  const double d = (8.0 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12.0 * h);
  x[i] = saved;
  return d;
}

// max |analytic - numeric| / max |numeric| over the checked indices (every index when
// max_checks covers the tensor; otherwise max_checks indices drawn with a fixed seed).
template <typename F>
double gradient_error(std::vector<double>& x, const std::vector<double>& analytic, F&& f,
                      size_t max_checks = 1u << 30, double h = 1e-4) {
  std::vector<size_t> idx(x.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  if (idx.size() > max_checks) {
    std::mt19937_64 rng(12345);
    std::shuffle(idx.begin(), idx.end(), rng);
    idx.resize(max_checks);
  }
  double diff = 0.0, scale = 0.0;
  for (size_t i : idx) {
    const double n = numeric_derivative(x, i, f, h);
    diff = std::max(diff, std::fabs(analytic[i] - n));
    scale = std::max(scale, std::fabs(n));
  }
  return diff / std::max(scale, 1e-12);
}

inline std::vector<double> random_doubles(size_t n, uint64_t seed, double scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace mla::train
