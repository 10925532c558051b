// mla tokenize --model DIR (--text S | --file F) [--lines] [--add-special]: ids as a JSON array
// (--lines: one array per input line, the '\n' not included).
// mla tokenize --write-byte-level DIR: DIR/tokenizer.json for mla train's byte-level models.
// mla detokenize --model DIR (--ids 1,2,3 | --ids-file F): the text (--ids-file: one JSON array
// of ids per line in, one JSON string per line out).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "mla/atomic_file.h"
#include "mla/error.h"
#include "mla/tokenizer.h"

namespace mla::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string write_byte_level;
  std::string text;
  std::string file;
  bool lines = false;
  bool add_special = false;
};

struct DetokenizeOptions {
  std::string model;
  std::string ids;
  std::string ids_file;
  bool skip_special = false;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path + ": read failed");
  return ss.str();
}

void write_out(const std::string& s) {
  if (!s.empty() && std::fwrite(s.data(), 1, s.size(), stdout) != s.size()) {
    throw Error("stdout: write failed");
  }
}

std::string ids_json(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  return out + "]\n";
}

// Lines of the text without their '\n'; a final '\n' does not start another line.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

int run_tokenize(const TokenizeOptions& opt) {
  if (!opt.write_byte_level.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(opt.write_byte_level, ec);
    if (ec) throw Error(opt.write_byte_level + ": cannot create the folder: " + ec.message());
    const std::string path = opt.write_byte_level + "/tokenizer.json";
    write_file_atomic(path, byte_level_tokenizer_json());
    std::printf("wrote %s (byte-level: token id = byte value, 256 ids)\n", path.c_str());
    return 0;
  }
  const Tokenizer tokenizer = Tokenizer::from_dir(opt.model);
  const std::string input = opt.file.empty() ? opt.text : read_all(opt.file);
  const std::string where = opt.file.empty() ? "--text" : opt.file;
  const auto encode = [&](std::string_view s, size_t line) {
    try {
      return tokenizer.encode(s, opt.add_special);
    } catch (const Error& e) {
      throw Error(where + (opt.lines ? ": line " + std::to_string(line + 1) : std::string()) +
                  ": " + e.what());
    }
  };
  if (!opt.lines) {
    write_out(ids_json(encode(input, 0)));
    return 0;
  }
  const std::vector<std::string_view> lines = split_lines(input);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    out += ids_json(encode(lines[i], i));
    if (out.size() > (1 << 20)) {
      write_out(out);
      out.clear();
    }
  }
  write_out(out);
  return 0;
}

// "1,2,3" (spaces allowed around numbers, optional [ ]) -> ids.
std::vector<int32_t> parse_ids(std::string_view s, const std::string& where) {
  std::vector<int32_t> ids;
  size_t i = 0;
  const auto skip_space = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  };
  skip_space();
  const bool bracket = i < s.size() && s[i] == '[';
  if (bracket) ++i;
  skip_space();
  if (i < s.size() && !(bracket && s[i] == ']')) {
    while (true) {
      skip_space();
      const size_t begin = i;
      int64_t value = 0;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9' && value <= INT32_MAX)
        value = value * 10 + (s[i++] - '0');
      if (i == begin || value > INT32_MAX) {
        throw Error(where + ": expected comma-separated token ids (non-negative integers), got '" +
                    std::string(s) + "'");
      }
      ids.push_back(static_cast<int32_t>(value));
      skip_space();
      if (i < s.size() && s[i] == ',') {
        ++i;
        continue;
      }
      break;
    }
  }
  if (bracket) {
    if (i >= s.size() || s[i] != ']')
      throw Error(where + ": missing ']' in '" + std::string(s) + "'");
    ++i;
  }
  skip_space();
  if (i != s.size()) {
    throw Error(where + ": expected comma-separated token ids (non-negative integers), got '" +
                std::string(s) + "'");
  }
  return ids;
}

int run_detokenize(const DetokenizeOptions& opt) {
  const Tokenizer tokenizer = Tokenizer::from_dir(opt.model);
  if (opt.ids_file.empty()) {
    write_out(tokenizer.decode(parse_ids(opt.ids, "--ids"), opt.skip_special));
    return 0;
  }
  const std::string input = read_all(opt.ids_file);
  const std::vector<std::string_view> lines = split_lines(input);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string where = opt.ids_file + ": line " + std::to_string(i + 1);
    std::string text;
    try {
      text = tokenizer.decode(parse_ids(lines[i], where), opt.skip_special);
    } catch (const Error& e) {
      const std::string message = e.what();
      throw Error(message.rfind(where, 0) == 0 ? message : where + ": " + message);
    }
    out += nlohmann::json(text).dump() + "\n";
  }
  write_out(out);
  return 0;
}

}  // namespace

Runner add_tokenize_command(CLI::App& app) {
  auto opt = std::make_shared<TokenizeOptions>();
  CLI::App* cmd =
      app.add_subcommand("tokenize", "Text to token ids (JSON) with a model's tokenizer.json");
  CLI::Option* model = cmd->add_option("--model", opt->model,
                                       "Folder with tokenizer.json (and tokenizer_config.json)");
  CLI::Option* text = cmd->add_option("--text", opt->text, "The text to tokenize");
  CLI::Option* file = cmd->add_option("--file", opt->file, "A UTF-8 file to tokenize");
  text->excludes(file);
  cmd->add_flag("--lines", opt->lines, "Tokenize each line alone: one JSON array per line");
  cmd->add_flag("--add-special", opt->add_special, "Add bos (add_bos_token) / eos (add_eos_token)");
  CLI::Option* write = cmd->add_option("--write-byte-level", opt->write_byte_level,
                                       "Write DIR/tokenizer.json for mla train's byte-level models")
                           ->excludes(model)
                           ->excludes(text)
                           ->excludes(file);
  return [opt, model, text, file, write] {
    if (write->count() > 0) return run_tokenize(*opt);
    if (model->count() == 0) throw Error("tokenize: --model is required");
    if (text->count() == 0 && file->count() == 0) throw Error("tokenize: give --text or --file");
    return run_tokenize(*opt);
  };
}

Runner add_detokenize_command(CLI::App& app) {
  auto opt = std::make_shared<DetokenizeOptions>();
  CLI::App* cmd =
      app.add_subcommand("detokenize", "Token ids to text with a model's tokenizer.json");
  cmd->add_option("--model", opt->model, "Folder with tokenizer.json (and tokenizer_config.json)")
      ->required();
  CLI::Option* ids = cmd->add_option("--ids", opt->ids, "Comma-separated token ids, e.g. 1,2,3");
  CLI::Option* file = cmd->add_option("--ids-file", opt->ids_file,
                                      "One id list per line; prints one JSON string per line");
  ids->excludes(file);
  cmd->add_flag("--skip-special", opt->skip_special, "Leave special tokens out of the text");
  return [opt, ids, file] {
    if (ids->count() == 0 && file->count() == 0)
      throw Error("detokenize: give --ids or --ids-file");
    return run_detokenize(*opt);
  };
}

}  // namespace mla::cli
