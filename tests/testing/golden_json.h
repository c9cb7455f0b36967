// Reading the golden.json files of tools/make_golden_llama.py and make_golden_gpu_llama.py:
// arrays of numbers to vectors, and a whole file parsed (a failure is a test failure).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/json_reader.h"

namespace rag::testing {

inline std::vector<float> JsonFloats(const JsonValue& v) {
  std::vector<float> out;
  for (const JsonValue& x : v.items()) out.push_back(static_cast<float>(x.as_double()));
  return out;
}

inline std::vector<int32_t> JsonInts(const JsonValue& v) {
  std::vector<int32_t> out;
  for (const JsonValue& x : v.items()) out.push_back(static_cast<int32_t>(x.as_int()));
  return out;
}

inline JsonValue LoadJsonFile(const std::string& path) {
  auto text = ReadFileToString(path);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  auto json = ReadJson(text.ok() ? *text : "{}", path);
  EXPECT_TRUE(json.ok()) << json.status().ToString();
  return json.ok() ? std::move(json).value() : JsonValue();
}

}  // namespace rag::testing
