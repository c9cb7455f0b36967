// The wire form of a tensor-parallel step (engine/dist/tp_step_wire.h): every call round-trips
// with every field intact, and a malformed message (any truncation, a trailing byte, an
// unknown call, a negative or impossible count) is an InvalidArgument, never a crash.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "engine/dist/tp_step_wire.h"

namespace rag {
namespace {

TpStep MakeStep(TpCall call) {
  TpStep step;
  step.call = call;
  step.steps = call == TpCall::kGreedyDecode ? 7 : 0;
  SequenceInput prefill;
  prefill.tokens = {1, 2, 3, 151643, -5};
  prefill.start_pos = 0;
  prefill.block_table = {4, 9};
  prefill.all_logits = true;
  SequenceInput decode;
  decode.tokens = {42};
  decode.start_pos = 1000;
  decode.block_table = {0, 1, 2, 3, 5, 6, 7, 8};
  SequenceInput empty;  // no tokens, no blocks
  empty.start_pos = std::numeric_limits<int32_t>::max();
  step.batch.sequences = {prefill, decode, empty};
  if (call == TpCall::kForwardSample) {
    step.sampling = {{0.0f, 0, 1.0f, 0.0f}, {0.7f, 40, 0.95f, 0.123456f}, {1.5f, -1, 0.5f, 0.999f}};
  }
  return step;
}

void ExpectSameStep(const TpStep& a, const TpStep& b) {
  EXPECT_EQ(a.call, b.call);
  EXPECT_EQ(a.steps, b.steps);
  ASSERT_EQ(a.batch.sequences.size(), b.batch.sequences.size());
  for (size_t i = 0; i < a.batch.sequences.size(); ++i) {
    SCOPED_TRACE("sequence " + std::to_string(i));
    const SequenceInput& x = a.batch.sequences[i];
    const SequenceInput& y = b.batch.sequences[i];
    EXPECT_EQ(x.tokens, y.tokens);
    EXPECT_EQ(x.start_pos, y.start_pos);
    EXPECT_EQ(x.block_table, y.block_table);
    EXPECT_EQ(x.all_logits, y.all_logits);
  }
  ASSERT_EQ(a.sampling.size(), b.sampling.size());
  for (size_t i = 0; i < a.sampling.size(); ++i) {
    SCOPED_TRACE("sampling row " + std::to_string(i));
    EXPECT_EQ(a.sampling[i].temperature, b.sampling[i].temperature);
    EXPECT_EQ(a.sampling[i].top_k, b.sampling[i].top_k);
    EXPECT_EQ(a.sampling[i].top_p, b.sampling[i].top_p);
    EXPECT_EQ(a.sampling[i].uniform, b.sampling[i].uniform);
  }
}

// Overwrites the i32 at `offset` of an encoded step.
void PutI32(std::string* message, size_t offset, int32_t value) {
  const auto u = static_cast<uint32_t>(value);
  for (int i = 0; i < 4; ++i) (*message)[offset + i] = static_cast<char>(u >> (8 * i));
}

constexpr size_t kSequenceCountOffset = 1 + 4;  // after the call byte and steps

TEST(TpStepWireTest, EveryCallRoundTrips) {
  for (TpCall call : {TpCall::kForward, TpCall::kForwardArgmax, TpCall::kForwardSample,
                      TpCall::kGreedyDecode, TpCall::kClose}) {
    SCOPED_TRACE("call " + std::to_string(static_cast<int>(call)));
    const TpStep step = MakeStep(call);
    StatusOr<TpStep> decoded = DecodeTpStep(EncodeTpStep(step));
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    ExpectSameStep(step, *decoded);
  }
}

TEST(TpStepWireTest, EmptyStepRoundTrips) {
  TpStep step;
  const std::string message = EncodeTpStep(step);
  EXPECT_EQ(message.size(), 1u + 4 + 4 + 4);
  StatusOr<TpStep> decoded = DecodeTpStep(message);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ExpectSameStep(step, *decoded);
}

TEST(TpStepWireTest, IsLittleEndian) {
  TpStep step;
  step.call = TpCall::kGreedyDecode;
  step.steps = 0x01020304;
  const std::string message = EncodeTpStep(step);
  EXPECT_EQ(message.substr(0, 5), std::string("\x04\x04\x03\x02\x01", 5));
}

TEST(TpStepWireTest, EveryTruncationFails) {
  const std::string message = EncodeTpStep(MakeStep(TpCall::kForwardSample));
  for (size_t n = 0; n < message.size(); ++n) {
    StatusOr<TpStep> decoded = DecodeTpStep(message.substr(0, n));
    ASSERT_FALSE(decoded.ok()) << "a prefix of " << n << " bytes decoded";
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument) << n;
  }
}

TEST(TpStepWireTest, TrailingByteFails) {
  StatusOr<TpStep> decoded = DecodeTpStep(EncodeTpStep(MakeStep(TpCall::kForward)) + '\0');
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find("left over"), std::string::npos)
      << decoded.status().message();
}

TEST(TpStepWireTest, UnknownCallFails) {
  for (int call : {0, 6, 255}) {
    std::string message = EncodeTpStep(MakeStep(TpCall::kForward));
    message[0] = static_cast<char>(call);
    StatusOr<TpStep> decoded = DecodeTpStep(message);
    ASSERT_FALSE(decoded.ok()) << call;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(decoded.status().message().find("unknown call " + std::to_string(call)),
              std::string::npos)
        << decoded.status().message();
  }
}

TEST(TpStepWireTest, NegativeCountFails) {
  std::string message = EncodeTpStep(MakeStep(TpCall::kForward));
  PutI32(&message, kSequenceCountOffset, -1);
  StatusOr<TpStep> decoded = DecodeTpStep(message);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find("negative"), std::string::npos)
      << decoded.status().message();

  // The first sequence's token count.
  message = EncodeTpStep(MakeStep(TpCall::kForward));
  PutI32(&message, kSequenceCountOffset + 4, -3);
  decoded = DecodeTpStep(message);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("negative"), std::string::npos)
      << decoded.status().message();
}

// A count larger than the message could hold is refused before anything is allocated for it.
TEST(TpStepWireTest, ImpossibleCountFails) {
  std::string message = EncodeTpStep(MakeStep(TpCall::kForward));
  PutI32(&message, kSequenceCountOffset, std::numeric_limits<int32_t>::max());
  StatusOr<TpStep> decoded = DecodeTpStep(message);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);

  message = EncodeTpStep(MakeStep(TpCall::kForward));
  PutI32(&message, kSequenceCountOffset + 4, 1 << 30);
  decoded = DecodeTpStep(message);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
}

TEST(TpStepWireTest, AllLogitsByteMustBeZeroOrOne) {
  TpStep step;
  step.batch.sequences.resize(1);
  std::string message = EncodeTpStep(step);
  // call, steps, count, tokens count, start_pos, blocks count, then the all_logits byte.
  const size_t all_logits = 1 + 4 + 4 + 4 + 4 + 4;
  ASSERT_EQ(message[all_logits], '\0');
  message[all_logits] = 2;
  EXPECT_FALSE(DecodeTpStep(message).ok());
}

}  // namespace
}  // namespace rag
