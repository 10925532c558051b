// The generated tasks `mla train` offers without --data: sequences that can only be solved by
// attending to earlier tokens, made in code from a seed (mla::TrainData::generated).
// Every sequence is S + 1 bytes; inputs are the first S, targets the last S, and only the
// positions the task defines are scored, so the loss measures the skill itself:
//   recall  multi-query associative recall: "k1v1k2v2..kPvP|" with distinct letter keys and digit
//           values, then queries "kv" whose value must be recalled from the pairs (scored).
//   copy    a random letter string, '|', then the same string again (the copy is scored).
#pragma once

#include <string>

#include "mla/train.h"
#include "mla/train_data.h"

namespace mla::cli {

// "recall" or "copy"; throws "task: unknown task '<name>' (choices: recall, copy)".
TrainData task_data(const std::string& name);

// The data a run's options name: options.data_path's text when set, else options.task.
// A Trainer::DataFactory, for Trainer's constructor and Trainer::resume.
TrainData train_data(const TrainOptions& options);

}  // namespace mla::cli
