// Rasterises line charts into an RGB buffer, encodes it with libpng and writes the file atomically.
#include "mla/plot.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "io/font5x7.h"
#include "mla/atomic_file.h"
#include "mla/error.h"

namespace mla {
namespace {

constexpr int kPanelW = 640, kPanelH = 440, kLeft = 90, kRight = 20, kTop = 50, kBottom = 70;

struct Rgb {
  uint8_t r, g, b;
};
constexpr Rgb kPalette[] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                            {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127}};

class Canvas {
 public:
  Canvas(int w, int h) : w_(w), h_(h), px_(static_cast<size_t>(w * h * 3), 255) {}
  void set(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    uint8_t* p = &px_[static_cast<size_t>((y * w_ + x) * 3)];
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
  }
  void line(double x0, double y0, double x1, double y1, Rgb c, int thickness) {
    const double len = std::max(std::fabs(x1 - x0), std::fabs(y1 - y0));
    const int steps = std::max(1, static_cast<int>(len * 2));
    for (int i = 0; i <= steps; ++i) {
      const double t = static_cast<double>(i) / steps;
      const int x = static_cast<int>(std::lround(x0 + (x1 - x0) * t));
      const int y = static_cast<int>(std::lround(y0 + (y1 - y0) * t));
      for (int dx = 0; dx < thickness; ++dx) {
        for (int dy = 0; dy < thickness; ++dy)
          set(x + dx - thickness / 2, y + dy - thickness / 2, c);
      }
    }
  }
  void text(int x, int y, const std::string& s, Rgb c, int scale = 2) {
    for (char ch : s) {
      if (const uint8_t* rows = plot_font::glyph(ch)) {
        for (int r = 0; r < 7; ++r) {
          for (int b = 0; b < 5; ++b) {
            if (rows[r] & (0x10 >> b)) {
              for (int sx = 0; sx < scale; ++sx) {
                for (int sy = 0; sy < scale; ++sy) set(x + b * scale + sx, y + r * scale + sy, c);
              }
            }
          }
        }
      }
      x += 6 * scale;
    }
  }
  static int text_width(const std::string& s, int scale = 2) {
    return static_cast<int>(s.size()) * 6 * scale;
  }
  int width() const { return w_; }
  int height() const { return h_; }
  const uint8_t* row(int y) const { return &px_[static_cast<size_t>(y * w_ * 3)]; }

 private:
  int w_, h_;
  std::vector<uint8_t> px_;
};

std::string format_tick(double v) {
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e7) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (std::fabs(v) >= 1e4 || (std::fabs(v) < 1e-2 && v != 0.0)) {
    std::snprintf(buf, sizeof buf, "%.1e", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  }
  return buf;
}

struct Axis {
  double lo, hi;
  bool log;
  double map(double v, double a, double b) const {
    const double t =
        log ? (std::log(v) - std::log(lo)) / (std::log(hi) - std::log(lo)) : (v - lo) / (hi - lo);
    return a + (b - a) * t;
  }
};

Axis make_axis(const std::vector<double>& values, bool log, bool from_zero) {
  double lo = *std::min_element(values.begin(), values.end());
  double hi = *std::max_element(values.begin(), values.end());
  if (log) {
    if (lo <= 0) throw Error("plot: a log axis needs positive values");
    lo /= 1.2;
    hi *= 1.2;
  } else {
    if (from_zero) lo = std::min(lo, 0.0);
    const double pad = (hi - lo) * 0.08 + (hi == lo ? std::fabs(hi) * 0.1 + 1.0 : 0.0);
    hi += pad;
    if (!from_zero) lo -= pad;
  }
  return {lo, hi, log};
}

void draw_panel(Canvas& cv, int x0, const PlotPanel& panel) {
  const Rgb black{0, 0, 0}, grid{225, 225, 225};
  std::vector<double> xs, ys;
  for (const auto& s : panel.series) {
    if (s.x.size() != s.y.size())
      throw Error("plot: series '" + s.name + "' has x and y of different lengths");
    xs.insert(xs.end(), s.x.begin(), s.x.end());
    ys.insert(ys.end(), s.y.begin(), s.y.end());
  }
  if (xs.empty()) throw Error("plot: panel '" + panel.title + "' has no points");
  const Axis ax = make_axis(xs, panel.log_x, false), ay = make_axis(ys, panel.log_y, true);
  const int left = x0 + kLeft, right = x0 + kPanelW - kRight, top = kTop,
            bottom = kPanelH - kBottom;
  // Ticks: the distinct x values when there are few (contexts, steps), else five even steps.
  std::set<double> distinct(xs.begin(), xs.end());
  std::vector<double> xticks;
  if (distinct.size() <= 8) {
    xticks.assign(distinct.begin(), distinct.end());
  } else {
    for (int i = 0; i <= 4; ++i) xticks.push_back(ax.lo + (ax.hi - ax.lo) * i / 4);
  }
  for (double v : xticks) {
    const double x = ax.map(v, left, right);
    cv.line(x, top, x, bottom, grid, 1);
    const std::string label = format_tick(v);
    cv.text(static_cast<int>(x) - Canvas::text_width(label) / 2, bottom + 8, label, black);
  }
  for (int i = 0; i <= 4; ++i) {
    const double v = ay.log
                         ? std::exp(std::log(ay.lo) + (std::log(ay.hi) - std::log(ay.lo)) * i / 4)
                         : ay.lo + (ay.hi - ay.lo) * i / 4;
    const double y = ay.map(v, bottom, top);
    cv.line(left, y, right, y, grid, 1);
    const std::string label = format_tick(v);
    cv.text(left - 6 - Canvas::text_width(label), static_cast<int>(y) - 7, label, black);
  }
  cv.line(left, bottom, right, bottom, black, 2);
  cv.line(left, top, left, bottom, black, 2);
  cv.text(x0 + (kPanelW - Canvas::text_width(panel.title)) / 2, 14, panel.title, black);
  cv.text(x0 + (kPanelW - Canvas::text_width(panel.x_label)) / 2, kPanelH - 28, panel.x_label,
          black);
  cv.text(x0 + 6, kTop - 22, panel.y_label, black);
  for (size_t si = 0; si < panel.series.size(); ++si) {
    const auto& s = panel.series[si];
    const Rgb color = kPalette[si % std::size(kPalette)];
    for (size_t i = 0; i + 1 < s.x.size(); ++i) {
      cv.line(ax.map(s.x[i], left, right), ay.map(s.y[i], bottom, top),
              ax.map(s.x[i + 1], left, right), ay.map(s.y[i + 1], bottom, top), color, 3);
    }
    for (size_t i = 0; i < s.x.size(); ++i) {
      const double px = ax.map(s.x[i], left, right), py = ay.map(s.y[i], bottom, top);
      for (int d = -3; d <= 3; ++d) cv.line(px - 3, py + d, px + 3, py + d, color, 1);
    }
    const int ly = top + 8 + static_cast<int>(si) * 20;
    cv.line(left + 12, ly + 6, left + 36, ly + 6, color, 4);
    cv.text(left + 42, ly, s.name, black);
  }
}

// libpng reports errors by longjmp, so this function keeps no state that a jump could clobber.
void append_png_bytes(png_structp png, png_bytep data, size_t size) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), size);
}

bool encode_png(std::string* out, const Canvas& cv) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (png == nullptr) return false;
  png_infop info = png_create_info_struct(png);
  if (info == nullptr || setjmp(png_jmpbuf(png)) != 0) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, out, append_png_bytes, nullptr);
  png_set_IHDR(png, info, static_cast<png_uint_32>(cv.width()),
               static_cast<png_uint_32>(cv.height()), 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < cv.height(); ++y) png_write_row(png, const_cast<png_bytep>(cv.row(y)));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

void write_line_plot(const std::string& path, const std::vector<PlotPanel>& panels) {
  if (panels.empty()) throw Error("plot: nothing to draw");
  Canvas cv(kPanelW * static_cast<int>(panels.size()), kPanelH);
  for (size_t i = 0; i < panels.size(); ++i)
    draw_panel(cv, static_cast<int>(i) * kPanelW, panels[i]);

  std::string png;
  if (!encode_png(&png, cv)) throw Error(path + ": cannot encode plot");
  write_file_atomic(path, png);
}

}  // namespace mla
