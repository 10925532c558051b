// Line charts drawn with cairo: DejaVu Sans through fontconfig, ticks at round values (1, 2, 5
// times a power of ten), the legend in a column of its own right of the plot area. The PNG is
// encoded in memory and written with mla::write_file_atomic.
#include "plot.h"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "mla/atomic_file.h"
#include "mla/error.h"

namespace mla::cli {
namespace {

constexpr double kPanelH = 460, kPlotW = 560, kLeft = 78, kTop = 52, kBottom = 62, kLegendGap = 18,
                 kInset = 6;
constexpr const char* kFont = "DejaVu Sans";

struct Rgb {
  double r, g, b;
};
// The "tab10" palette: distinct under common colour blindness, the one matplotlib uses.
constexpr Rgb kPalette[] = {{0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173},
                            {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294},
                            {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498}};

using Context = std::unique_ptr<cairo_t, decltype(&cairo_destroy)>;
using Surface = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;

std::string format_tick(double v) {
  char buf[32];
  const double a = std::fabs(v);
  if (a >= 1e6 && std::fmod(a, 1e5) == 0) {
    std::snprintf(buf, sizeof buf, "%gM", v / 1e6);
  } else if (a >= 1e4 && std::fmod(a, 1e2) == 0) {
    std::snprintf(buf, sizeof buf, "%gk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.6g", v);
  }
  return buf;
}

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<double> ticks;

  // Position of v between a (at lo) and b (at hi).
  double map(double v, double a, double b) const {
    const double t =
        log ? (std::log(v) - std::log(lo)) / (std::log(hi) - std::log(lo)) : (v - lo) / (hi - lo);
    return a + (b - a) * t;
  }
};

// A step of 1, 2 or 5 times a power of ten giving about `target` intervals over `range`.
double round_step(double range, int target) {
  const double raw = range / target, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

Axis linear_axis(double lo, double hi, bool from_zero) {
  if (from_zero) lo = std::min(lo, 0.0);
  if (hi == lo) {
    const double pad = std::fabs(hi) * 0.1 + 1.0;
    hi += pad;
    if (!from_zero || lo != 0.0) lo -= pad;
  }
  const double step = round_step(hi - lo, 5);
  Axis ax;
  ax.lo = std::floor(lo / step + 1e-9) * step;
  ax.hi = std::ceil(hi / step - 1e-9) * step;
  for (double v = ax.lo; v <= ax.hi + step * 1e-6; v += step)
    ax.ticks.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  return ax;
}

Axis log_axis(double lo, double hi) {
  if (lo <= 0) throw Error("plot: a log axis needs positive values");
  Axis ax;
  ax.log = true;
  ax.lo = lo / 1.25;
  ax.hi = hi * 1.25;
  // Powers of ten; over few decades also 2 and 5 times them, and 1..9 when even that is sparse.
  const int e0 = static_cast<int>(std::floor(std::log10(ax.lo)));
  const int e1 = static_cast<int>(std::ceil(std::log10(ax.hi)));
  for (const std::vector<double>& mantissas :
       {std::vector<double>{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}}) {
    ax.ticks.clear();
    for (int e = e0; e <= e1; ++e) {
      for (double m : mantissas) {
        const double v = m * std::pow(10.0, e);
        if (v >= ax.lo && v <= ax.hi) ax.ticks.push_back(v);
      }
    }
    if (ax.ticks.size() >= 3 && ax.ticks.size() <= 8) break;
    if (ax.ticks.size() > 8) {
      if (mantissas.size() > 1) {
        // The previous, coarser set had too few: keep this one but thin it to about six.
        const size_t every = (ax.ticks.size() + 5) / 6;
        std::vector<double> thin;
        for (size_t i = 0; i < ax.ticks.size(); i += every) thin.push_back(ax.ticks[i]);
        ax.ticks = thin;
      }
      break;
    }
  }
  return ax;
}

Axis make_axis(const std::vector<double>& values, bool log, bool from_zero) {
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  if (!std::isfinite(*lo) || !std::isfinite(*hi)) throw Error("plot: values must be finite");
  return log ? log_axis(*lo, *hi) : linear_axis(*lo, *hi, from_zero);
}

double text_width(cairo_t* cr, const std::string& s) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  return e.x_advance;
}

void font(cairo_t* cr, double size, bool bold = false) {
  cairo_select_font_face(cr, kFont, CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

// Text with its left edge at x (align 0), centre (0.5) or right edge (1), baseline at y.
void text(cairo_t* cr, double x, double y, const std::string& s, double align = 0) {
  cairo_move_to(cr, x - align * text_width(cr, s), y);
  cairo_show_text(cr, s.c_str());
}

double legend_width(cairo_t* cr, const PlotPanel& panel) {
  font(cr, 12);
  double w = 0;
  for (const auto& s : panel.series) w = std::max(w, text_width(cr, s.name));
  return w + 48;
}

void draw_panel(cairo_t* cr, double x0, const PlotPanel& panel) {
  std::vector<double> xs, ys;
  for (const auto& s : panel.series) {
    if (s.x.size() != s.y.size())
      throw Error("plot: series '" + s.name + "' has x and y of different lengths");
    xs.insert(xs.end(), s.x.begin(), s.x.end());
    ys.insert(ys.end(), s.y.begin(), s.y.end());
  }
  if (xs.empty()) throw Error("plot: panel '" + panel.title + "' has no points");
  const Axis ax = make_axis(xs, panel.log_x, false), ay = make_axis(ys, panel.log_y, true);
  const double left = x0 + kLeft, right = left + kPlotW, top = kTop, bottom = kPanelH - kBottom;
  // Data positions keep a few pixels off the frame, so end points and markers show whole.
  const auto px = [&](double v) { return ax.map(v, left + kInset, right - kInset); };
  const auto py = [&](double v) { return ay.map(v, bottom - kInset, top + kInset); };

  // Grid and tick labels.
  font(cr, 11);
  cairo_set_line_width(cr, 1);
  for (double v : ax.ticks) {
    const double x = std::round(px(v)) + 0.5;
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, x, top);
    cairo_line_to(cr, x, bottom);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
    text(cr, x, bottom + 17, format_tick(v), 0.5);
  }
  for (double v : ay.ticks) {
    const double y = std::round(py(v)) + 0.5;
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, left, y);
    cairo_line_to(cr, right, y);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
    text(cr, left - 7, y + 4, format_tick(v), 1);
  }
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_set_line_width(cr, 1.2);
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_stroke(cr);

  // Title, axis labels (the y label turned along the axis).
  cairo_set_source_rgb(cr, 0, 0, 0);
  font(cr, 15, true);
  text(cr, (left + right) / 2, 30, panel.title, 0.5);
  font(cr, 12.5);
  text(cr, (left + right) / 2, kPanelH - 18, panel.x_label, 0.5);
  cairo_save(cr);
  cairo_translate(cr, x0 + 22, (top + bottom) / 2);
  cairo_rotate(cr, -M_PI / 2);
  text(cr, 0, 0, panel.y_label, 0.5);
  cairo_restore(cr);

  // Series, clipped to the plot area.
  cairo_save(cr);
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  for (size_t si = 0; si < panel.series.size(); ++si) {
    const auto& s = panel.series[si];
    const Rgb c = kPalette[si % std::size(kPalette)];
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
    cairo_set_line_width(cr, 2.2);
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (i == 0) {
        cairo_move_to(cr, px(s.x[i]), py(s.y[i]));
      } else {
        cairo_line_to(cr, px(s.x[i]), py(s.y[i]));
      }
    }
    cairo_stroke(cr);
    if (s.x.size() <= 64) {  // markers where points are few enough to tell apart
      for (size_t i = 0; i < s.x.size(); ++i) {
        cairo_arc(cr, px(s.x[i]), py(s.y[i]), 3.2, 0, 2 * M_PI);
        cairo_fill(cr);
      }
    }
  }
  cairo_restore(cr);

  // Legend: its own column right of the plot area.
  font(cr, 12);
  const double lx = right + kLegendGap;
  for (size_t si = 0; si < panel.series.size(); ++si) {
    const Rgb c = kPalette[si % std::size(kPalette)];
    const double ly = top + 12 + static_cast<double>(si) * 22;
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
    cairo_set_line_width(cr, 2.2);
    cairo_move_to(cr, lx, ly - 4);
    cairo_line_to(cr, lx + 24, ly - 4);
    cairo_stroke(cr);
    cairo_arc(cr, lx + 12, ly - 4, 3.2, 0, 2 * M_PI);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text(cr, lx + 32, ly, panel.series[si].name);
  }
}

cairo_status_t append_bytes(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

void write_line_plot(const std::string& path, const std::vector<PlotPanel>& panels) {
  if (panels.empty()) throw Error("plot: nothing to draw");
  // Widths first (the legend column follows the longest series name), on a scratch surface.
  std::vector<double> widths;
  {
    Surface probe(cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1), cairo_surface_destroy);
    Context cr(cairo_create(probe.get()), cairo_destroy);
    for (const PlotPanel& p : panels)
      widths.push_back(kLeft + kPlotW + kLegendGap + legend_width(cr.get(), p) + 12);
  }
  double total = 0;
  for (double w : widths) total += w;
  Surface surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(std::ceil(total)),
                                             static_cast<int>(kPanelH)),
                  cairo_surface_destroy);
  Context cr(cairo_create(surface.get()), cairo_destroy);
  cairo_set_source_rgb(cr.get(), 1, 1, 1);
  cairo_paint(cr.get());
  double x0 = 0;
  for (size_t i = 0; i < panels.size(); ++i) {
    draw_panel(cr.get(), x0, panels[i]);
    x0 += widths[i];
  }
  cairo_surface_flush(surface.get());
  std::string png;
  if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS ||
      cairo_surface_write_to_png_stream(surface.get(), append_bytes, &png) !=
          CAIRO_STATUS_SUCCESS) {
    throw Error(path +
                ": cannot encode the plot: " + cairo_status_to_string(cairo_status(cr.get())));
  }
  write_file_atomic(path, png);
}

}  // namespace mla::cli
