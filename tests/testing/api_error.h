// GoogleTest checks of the HTTP API's error answers, shared by the server tests.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "tests/testing/http_client.h"

namespace rag::testing {

// "Content-Type: multipart/form-data; boundary=..." for a body made by Multipart().
inline std::string MultipartContentType() {
  return std::string("Content-Type: multipart/form-data; boundary=") + kBoundary;
}

// Checks the error JSON of DESIGN.md, {"error":{"message","type","code"}}, with `status`; and
// that the message contains `message_part` (when given) and the code is `code` (when given).
inline void ExpectError(const Response& r, int status, const std::string& message_part = "",
                        const std::string& code = "") {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json") << r.body;
  const Json j = r.json();
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
  EXPECT_TRUE(j["error"]["message"].is_string()) << r.body;
  EXPECT_TRUE(j["error"]["type"].is_string()) << r.body;
  EXPECT_TRUE(j["error"]["code"].is_string()) << r.body;
  if (!message_part.empty()) {
    EXPECT_NE(j["error"].value("message", "").find(message_part), std::string::npos) << r.body;
  }
  if (!code.empty()) {
    EXPECT_EQ(j["error"].value("code", ""), code) << r.body;
  }
}

}  // namespace rag::testing
