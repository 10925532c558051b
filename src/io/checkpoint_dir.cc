// CheckpointDir: the tensors of a Hugging Face model folder, single-file or sharded.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mla/error.h"
#include "mla/safetensors.h"

namespace mla {
namespace fs = std::filesystem;

CheckpointDir CheckpointDir::open(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir + ": not a directory");
  CheckpointDir ckpt;
  ckpt.dir_ = dir;
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(index_path, ec)) {
    std::ifstream in(index_path);
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::exception& e) {
      throw Error(index_path.string() + ": malformed JSON: " + e.what());
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      throw Error(index_path.string() + ": missing object 'weight_map'");
    }
    std::map<std::string, size_t> file_index;  // shard file name -> files_ index
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it->is_string())
        throw Error(index_path.string() + ": weight_map['" + it.key() + "'] must be a file name");
      const std::string shard = it->get<std::string>();
      if (shard.find('/') != std::string::npos || shard == ".." || shard.empty()) {
        throw Error(index_path.string() + ": weight_map['" + it.key() + "']: invalid shard name '" +
                    shard + "'");
      }
      auto found = file_index.find(shard);
      if (found == file_index.end()) {
        const fs::path shard_path = fs::path(dir) / shard;
        if (!fs::exists(shard_path, ec)) {
          throw Error(index_path.string() + ": shard '" + shard + "' listed for tensor '" +
                      it.key() + "' is missing");
        }
        ckpt.files_.push_back(SafetensorsFile::open(shard_path.string()));
        found = file_index.emplace(shard, ckpt.files_.size() - 1).first;
      }
      if (!ckpt.files_[found->second].contains(it.key())) {
        throw Error(ckpt.files_[found->second].path() + ": no tensor '" + it.key() +
                    "' (listed in " + index_path.filename().string() + ")");
      }
      ckpt.owner_[it.key()] = found->second;
    }
    return ckpt;
  }
  std::vector<fs::path> shards;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".safetensors") shards.push_back(entry.path());
  }
  if (shards.empty())
    throw Error(dir + ": no .safetensors file and no model.safetensors.index.json");
  std::sort(shards.begin(), shards.end());
  for (const auto& shard : shards) {
    ckpt.files_.push_back(SafetensorsFile::open(shard.string()));
    for (const std::string& name : ckpt.files_.back().names()) {
      auto [it, inserted] = ckpt.owner_.emplace(name, ckpt.files_.size() - 1);
      if (!inserted) {
        throw Error(dir + ": tensor '" + name + "' appears in both " +
                    ckpt.files_[it->second].path() + " and " + shard.string());
      }
    }
  }
  return ckpt;
}

bool CheckpointDir::contains(const std::string& name) const {
  return owner_.count(name) != 0;
}

const SafetensorsFile& CheckpointDir::file_for(const std::string& name) const {
  auto it = owner_.find(name);
  if (it == owner_.end()) throw Error(dir_ + ": no tensor '" + name + "' in the checkpoint");
  return files_[it->second];
}

std::vector<std::string> CheckpointDir::names() const {
  std::vector<std::string> names;
  for (const auto& [name, index] : owner_) names.push_back(name);
  return names;
}

}  // namespace mla
