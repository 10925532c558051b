// Line charts written as PNG for `mla bench --plot` and `mla train --plot`, drawn with cairo (real
// fonts, antialiased lines): one or more panels side by side, each with its own axes at rounded
// ticks, its series, and a legend beside the plot area, never over the data.
#pragma once

#include <string>
#include <vector>

namespace mla::cli {

struct PlotSeries {
  std::string name;
  std::vector<double> x, y;
};

struct PlotPanel {
  std::string title;
  std::string x_label, y_label;
  bool log_x = false;
  bool log_y = false;
  std::vector<PlotSeries> series;
};

// Writes the panels side by side into `path` atomically (mla::write_file_atomic). Throws
// mla::Error on an empty panel list, a panel without points, x and y of different lengths,
// non-positive values on a log axis, or an unwritable path.
void write_line_plot(const std::string& path, const std::vector<PlotPanel>& panels);

}  // namespace mla::cli
