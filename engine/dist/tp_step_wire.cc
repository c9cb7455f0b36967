// Layout (every integer little-endian, floats as their IEEE-754 bits):
//   u8 call, i32 steps, i32 sequences,
//   per sequence: i32 n_tokens, n_tokens x i32, i32 start_pos, i32 n_blocks, n_blocks x i32,
//                 u8 all_logits (0 or 1),
//   i32 sampling rows, per row: f32 temperature, i32 top_k, f32 top_p, f32 uniform.
// Every field is written whatever the call, so one decoder serves all five. The decoder trusts
// nothing: a count is checked against the bytes left before anything is allocated for it, so a
// corrupt message costs no more memory than its own size.
#include "engine/dist/tp_step_wire.h"

#include <bit>
#include <limits>
#include <string_view>

#include "common/check.h"

namespace rag {
namespace {

constexpr size_t kI32Bytes = 4;
// The fewest bytes a sequence and a sampling row take (a sequence with no tokens or blocks).
constexpr size_t kMinSequenceBytes = 4 + 4 + 4 + 1;
constexpr size_t kSamplingBytes = 4 * 4;

class WireWriter {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void I32(int32_t v) {
    const auto u = static_cast<uint32_t>(v);
    for (int shift = 0; shift < 32; shift += 8) U8(static_cast<uint8_t>(u >> shift));
  }
  void F32(float v) { I32(std::bit_cast<int32_t>(v)); }
  // Counts travel as i32; a batch beyond that is a caller's bug, not a message to send.
  void Count(size_t n) {
    RAG_CHECK(n <= static_cast<size_t>(std::numeric_limits<int32_t>::max()));
    I32(static_cast<int32_t>(n));
  }
  void Ids(const std::vector<int32_t>& ids) {
    Count(ids.size());
    for (int32_t id : ids) I32(id);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads fields in order; every read that would pass the end is an InvalidArgument.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}

  size_t remaining() const { return data_.size() - pos_; }

  Status U8(uint8_t* v) {
    RAG_RETURN_IF_ERROR(Need(1));
    *v = static_cast<uint8_t>(data_[pos_++]);
    return Status::Ok();
  }
  Status I32(int32_t* v) {
    RAG_RETURN_IF_ERROR(Need(kI32Bytes));
    uint32_t u = 0;
    for (int i = 0; i < 4; ++i) u |= uint32_t{static_cast<uint8_t>(data_[pos_++])} << (8 * i);
    *v = static_cast<int32_t>(u);
    return Status::Ok();
  }
  Status F32(float* v) {
    int32_t bits = 0;
    RAG_RETURN_IF_ERROR(I32(&bits));
    *v = std::bit_cast<float>(bits);
    return Status::Ok();
  }
  // A count of items of at least `min_bytes_each` bytes that must fit in what is left.
  Status Count(size_t min_bytes_each, const char* what, int32_t* n) {
    RAG_RETURN_IF_ERROR(I32(n));
    if (*n < 0) {
      return InvalidArgument("tensor parallel step: negative count " + std::to_string(*n) + " of " +
                             what);
    }
    if (static_cast<size_t>(*n) > remaining() / min_bytes_each) {
      return InvalidArgument("tensor parallel step: " + std::to_string(*n) + " " + what +
                             " cannot fit in the " + std::to_string(remaining()) + " bytes left");
    }
    return Status::Ok();
  }
  Status Ids(const char* what, std::vector<int32_t>* ids) {
    int32_t n = 0;
    RAG_RETURN_IF_ERROR(Count(kI32Bytes, what, &n));
    ids->resize(static_cast<size_t>(n));
    for (int32_t& id : *ids) RAG_RETURN_IF_ERROR(I32(&id));
    return Status::Ok();
  }

 private:
  Status Need(size_t n) const {
    if (remaining() >= n) return Status::Ok();
    return InvalidArgument("tensor parallel step: the message ends early (after " +
                           std::to_string(data_.size()) + " bytes)");
  }

  std::string_view data_;
  size_t pos_ = 0;
};

bool KnownCall(uint8_t call) {
  return call >= static_cast<uint8_t>(TpCall::kForward) &&
         call <= static_cast<uint8_t>(TpCall::kClose);
}

void WriteSequence(const SequenceInput& s, WireWriter* w) {
  w->Ids(s.tokens);
  w->I32(s.start_pos);
  w->Ids(s.block_table);
  w->U8(s.all_logits ? 1 : 0);
}

Status ReadSequence(WireReader* r, SequenceInput* s) {
  RAG_RETURN_IF_ERROR(r->Ids("tokens", &s->tokens));
  RAG_RETURN_IF_ERROR(r->I32(&s->start_pos));
  RAG_RETURN_IF_ERROR(r->Ids("block table entries", &s->block_table));
  uint8_t all_logits = 0;
  RAG_RETURN_IF_ERROR(r->U8(&all_logits));
  if (all_logits > 1) {
    return InvalidArgument("tensor parallel step: all_logits byte " + std::to_string(all_logits) +
                           " is neither 0 nor 1");
  }
  s->all_logits = all_logits == 1;
  return Status::Ok();
}

Status ReadSampling(WireReader* r, DeviceSampling* d) {
  RAG_RETURN_IF_ERROR(r->F32(&d->temperature));
  RAG_RETURN_IF_ERROR(r->I32(&d->top_k));
  RAG_RETURN_IF_ERROR(r->F32(&d->top_p));
  return r->F32(&d->uniform);
}

}  // namespace

std::string EncodeTpStep(const TpStep& step) {
  WireWriter w;
  w.U8(static_cast<uint8_t>(step.call));
  w.I32(step.steps);
  w.Count(step.batch.sequences.size());
  for (const SequenceInput& s : step.batch.sequences) WriteSequence(s, &w);
  w.Count(step.sampling.size());
  for (const DeviceSampling& d : step.sampling) {
    w.F32(d.temperature);
    w.I32(d.top_k);
    w.F32(d.top_p);
    w.F32(d.uniform);
  }
  return w.Take();
}

StatusOr<TpStep> DecodeTpStep(const std::string& message) {
  WireReader r(message);
  TpStep step;
  uint8_t call = 0;
  RAG_RETURN_IF_ERROR(r.U8(&call));
  if (!KnownCall(call)) {
    return InvalidArgument("tensor parallel step: unknown call " + std::to_string(call));
  }
  step.call = static_cast<TpCall>(call);
  RAG_RETURN_IF_ERROR(r.I32(&step.steps));
  int32_t n = 0;
  RAG_RETURN_IF_ERROR(r.Count(kMinSequenceBytes, "sequences", &n));
  step.batch.sequences.resize(static_cast<size_t>(n));
  for (SequenceInput& s : step.batch.sequences) RAG_RETURN_IF_ERROR(ReadSequence(&r, &s));
  RAG_RETURN_IF_ERROR(r.Count(kSamplingBytes, "sampling rows", &n));
  step.sampling.resize(static_cast<size_t>(n));
  for (DeviceSampling& d : step.sampling) RAG_RETURN_IF_ERROR(ReadSampling(&r, &d));
  if (r.remaining() != 0) {
    return InvalidArgument("tensor parallel step: " + std::to_string(r.remaining()) +
                           " bytes left over after the step");
  }
  return step;
}

}  // namespace rag
