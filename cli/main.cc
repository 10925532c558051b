// mla: command-line front end over the library. Contract: exit 0 on success; any bad input gives
// exactly one line on stderr and exit code 2.
#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include "commands.h"
#include "mla/error.h"
#include "mla/version.h"
#include "test_hooks.h"
#include "threads.h"

namespace {

std::string one_line(std::string text) {
  for (char& ch : text) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "mla: error: %s\n", one_line(message).c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  mla::cli::use_passive_wait_policy(argv);  // may run the program again, see threads.h
  CLI::App app{"mla.cpp: DeepSeek Multi-head Latent Attention on the CPU", "mla"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mla " MLA_VERSION, "Print the version and exit");
  mla::cli::install_test_hooks_from_environment();
  std::map<const CLI::App*, mla::cli::Runner> runners;
  try {
    for (auto add :
         {mla::cli::add_attention_command, mla::cli::add_info_command, mla::cli::add_demo_command,
          mla::cli::add_bench_command, mla::cli::add_train_command, mla::cli::add_generate_command,
          mla::cli::add_forward_command, mla::cli::add_tokenize_command,
          mla::cli::add_detokenize_command, mla::cli::add_serve_command,
          mla::cli::add_perplexity_command}) {
      mla::cli::Runner run = add(app);
      runners[app.get_subcommands({}).back()] = std::move(run);
    }
    std::string known;
    bool is_known = false;
    for (const CLI::App* sub : app.get_subcommands({})) {
      known += (known.empty() ? "" : ", ") + sub->get_name();
      is_known = is_known || (argc > 1 && sub->get_name() == argv[1]);
    }
    if (argc > 1 && argv[1][0] != '-' && !is_known) {
      return fail(std::string("unknown command '") + argv[1] + "' (commands: " + known + ")");
    }
    app.parse(argc, argv);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);  // "mla <version>" on stdout, exit 0
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);  // prints the help of the (sub)command asked for
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(e.what());
  }
  try {
    for (const CLI::App* sub : app.get_subcommands()) return runners.at(sub)();
    return fail("no command given (try --help)");
  } catch (const mla::Error& e) {
    return fail(e.what());
  } catch (const std::bad_alloc&) {
    return fail("out of memory");
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what());
  }
}
