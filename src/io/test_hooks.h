// Hooks that tests switch on through the environment; without the variable they do nothing.
// They let an outside test catch the process at one exact moment, which no timing guess can.
#pragma once

#include <string>

namespace mla::detail {

// MLA_TEST_SLOW_SAVE=<milliseconds>: called by write_file_atomic once the temporary file is
// complete and flushed, just before it is renamed over `path`. Prints
// "test hook: <path> written to <tmp>, renaming in <ms> ms" on stderr and sleeps, so that a test
// can kill the process in the middle of a save (tests/cli/test_kill_mid_save.py). With
// MLA_TEST_SLOW_SAVE_PATH=<text> set too, only saves whose path contains <text> are slowed.
void before_atomic_rename(const std::string& path, const std::string& tmp);

}  // namespace mla::detail
