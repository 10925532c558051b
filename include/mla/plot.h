// Line charts written as PNG (libpng), for `mla bench --plot` and `mla train --plot`: one or
// more panels side by side, each with its own axes, series and legend.
#pragma once

#include <string>
#include <vector>

namespace mla {

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

// Writes the panels side by side into `path` atomically. Throws mla::Error on an empty panel
// list, non-positive values on a log axis, or an unwritable path.
void write_line_plot(const std::string& path, const std::vector<PlotPanel>& panels);

}  // namespace mla
