// Test hooks of the `mla` program, switched on through the environment; without the variables
// nothing is installed. They let an outside test catch the process at one exact moment.
#pragma once

namespace mla::cli {

// MLA_TEST_SLOW_SAVE=<milliseconds>: every atomic save, once its temporary file is complete and
// flushed and just before the rename, prints
// "test hook: <path> written to <tmp>, renaming in <ms> ms" on stderr and sleeps, so that a test
// can kill the process in the middle of a save (tests/cli/test_kill_mid_save.py). With
// MLA_TEST_SLOW_SAVE_PATH=<text> set too, only saves whose path contains <text> are slowed.
void install_test_hooks_from_environment();

}  // namespace mla::cli
