// Tokenizer against Hugging Face `tokenizers`: exact ids for every string of
// tests/data/tokenizer/llama3_golden.jsonl (tools/make_tokenizer_golden.py), round trips, the
// streaming decoder, special tokens and the refusals of what we do not support.
#ifdef RAG_HAVE_TOKENIZER  // the engine builds without the tokenizer where PCRE2 is missing

#include <gtest/gtest.h>

#include <sstream>

#include "common/file_util.h"
#include "common/json_reader.h"
#include "engine/tokenizer.h"
#include "common/utf8.h"

namespace rag {
namespace {

const std::string kData = RAG_TEST_DATA_DIR;
const std::string kTokenizerPath = kData + "/llama3-tokenizer/tokenizer.json";

struct GoldenCase {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<GoldenCase> ReadGolden() {
  std::vector<GoldenCase> cases;
  auto file = ReadFileToString(kData + "/tokenizer/llama3_golden.jsonl");
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  if (!file.ok()) return cases;
  std::istringstream lines(*file);
  std::string line;
  while (std::getline(lines, line)) {
    auto json = ReadJson(line, "golden line");
    EXPECT_TRUE(json.ok()) << json.status().ToString();
    if (!json.ok()) continue;
    GoldenCase c;
    c.text = json->Find("text")->as_string();
    for (const JsonValue& id : json->Find("ids")->items()) c.ids.push_back(static_cast<int32_t>(id.as_int()));
    cases.push_back(std::move(c));
  }
  return cases;
}

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tok = Tokenizer::Load(kTokenizerPath);
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    tokenizer_ = std::move(tok).value().release();
    golden_ = new std::vector<GoldenCase>(ReadGolden());
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete golden_;
  }
  static std::vector<int32_t> Ids(std::string_view text) {
    auto ids = tokenizer_->Encode(text);
    EXPECT_TRUE(ids.ok()) << ids.status().ToString();
    return ids.ok() ? *ids : std::vector<int32_t>{};
  }
  static const Tokenizer* tokenizer_;
  static std::vector<GoldenCase>* golden_;
};
const Tokenizer* TokenizerTest::tokenizer_ = nullptr;
std::vector<GoldenCase>* TokenizerTest::golden_ = nullptr;

TEST_F(TokenizerTest, MatchesHuggingFaceOnEveryGoldenString) {
  ASSERT_GE(golden_->size(), 300u);
  size_t matched = 0;
  for (const GoldenCase& c : *golden_) {
    const auto ids = Ids(c.text);
    if (ids == c.ids) {
      ++matched;
    } else {
      ADD_FAILURE() << "ids differ for text \"" << c.text << "\"";
    }
  }
  EXPECT_EQ(matched, golden_->size());
}

TEST_F(TokenizerTest, DecodeOfEncodeGivesTheTextBack) {
  for (const GoldenCase& c : *golden_) {
    EXPECT_EQ(tokenizer_->Decode(c.ids), c.text);
  }
}

TEST_F(TokenizerTest, StreamingDecoderEmitsOnlyWholeCharacters) {
  const std::string text = "日本語のテキスト 👨‍👩‍👧‍👦 café ثبت 🇺🇸 ok";
  const auto ids = Ids(text);
  StreamingDecoder decoder(*tokenizer_);
  std::string out;
  int held_back = 0;
  for (int32_t id : ids) {
    const std::string piece = decoder.Feed(id);
    EXPECT_EQ(FindInvalidUtf8(piece), std::string_view::npos) << "half a character was emitted";
    held_back += piece.size() < tokenizer_->TokenBytes(id).size();
    out += piece;
  }
  out += decoder.Flush();
  EXPECT_EQ(out, text);
  EXPECT_GT(held_back, 0) << "the text should contain characters split across tokens";
}

TEST_F(TokenizerTest, StreamingDecoderReplacesBytesThatCannotBeCompleted) {
  const auto lead = tokenizer_->TokenId("\xE6");  // first byte of a 3-byte character
  const auto cont = tokenizer_->TokenId("\x97");  // a continuation byte
  const auto a = tokenizer_->TokenId("a");
  ASSERT_TRUE(lead && cont && a);
  StreamingDecoder decoder(*tokenizer_);
  EXPECT_EQ(decoder.Feed(*lead), "");
  EXPECT_EQ(decoder.Feed(*a), "\xEF\xBF\xBD" "a");  // the lead byte can no longer be completed
  EXPECT_EQ(decoder.Feed(*cont), "\xEF\xBF\xBD");
  EXPECT_EQ(decoder.Feed(*lead), "");
  EXPECT_EQ(decoder.Flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(decoder.Flush(), "");
}

TEST_F(TokenizerTest, SpecialTokenIdsAgreeWithTheGoldenEncoding) {
  auto golden_ids = [&](const std::string& text) {
    for (const GoldenCase& c : *golden_) {
      if (c.text == text) return c.ids;
    }
    ADD_FAILURE() << "no golden line " << text;
    return std::vector<int32_t>{};
  };
  for (const char* name : {"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"}) {
    const auto id = tokenizer_->TokenId(name);
    ASSERT_TRUE(id.has_value()) << name;
    EXPECT_TRUE(tokenizer_->IsSpecial(*id)) << name;
    EXPECT_EQ(tokenizer_->TokenBytes(*id), name);
  }
  EXPECT_EQ(golden_ids("<|begin_of_text|>"), std::vector<int32_t>{*tokenizer_->TokenId("<|begin_of_text|>")});
  const auto chat = golden_ids("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
  ASSERT_FALSE(chat.empty());
  EXPECT_EQ(chat.back(), *tokenizer_->TokenId("<|eot_id|>"));
  EXPECT_FALSE(tokenizer_->TokenId("<|im_start|>").has_value());  // Llama 3 has no ChatML tokens
  EXPECT_EQ(tokenizer_->vocab_size(), 128256);  // HF: get_vocab_size(with_added_tokens=True)
  EXPECT_FALSE(tokenizer_->IsSpecial(*tokenizer_->TokenId("a")));
}

TEST_F(TokenizerTest, SpecialTokensCanBeEncodedAsPlainText) {
  auto ids = tokenizer_->Encode("say <|eot_id|> now", Tokenizer::Special::kAsText);
  ASSERT_TRUE(ids.ok());
  for (int32_t id : *ids) EXPECT_FALSE(tokenizer_->IsSpecial(id));
  EXPECT_EQ(tokenizer_->Decode(*ids), "say <|eot_id|> now");
  EXPECT_EQ(Ids("say <|eot_id|> now").size(), 4u);  // "say", " ", <|eot_id|>, " now"
}

TEST_F(TokenizerTest, LongRunsEncodeAndRoundTrip) {
  for (const std::string& text : {std::string(100000, ' '), std::string(50000, '\n') + "x",
                                  "a" + std::string(20000, '\t') + "b", std::string(30000, 'z')}) {
    const auto ids = Ids(text);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tokenizer_->Decode(ids), text);
  }
}

TEST_F(TokenizerTest, RefusesTextThatIsNotUtf8) {
  auto ids = tokenizer_->Encode("ok \xC3(");
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ids.status().message().find("byte offset 3"), std::string::npos) << ids.status().message();
}

// A minimal byte-level BPE tokenizer.json: the 256 byte tokens (ids 0-255 in alphabet order),
// "ab" and "abc" with merges in the given form, an added token.
std::string TinyTokenizerJson(bool pair_merges, const std::string& model_type = "BPE",
                              const std::string& normalizer = "null") {
  std::string vocab;
  int next = 256, id = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const int cp = printable ? b : next++;
    std::string ch;
    if (cp < 0x80) {
      ch = (cp == '"' || cp == '\\') ? std::string("\\") + static_cast<char>(cp) : std::string(1, static_cast<char>(cp));
    } else {
      ch = {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
    }
    vocab += "\"" + ch + "\":" + std::to_string(id++) + ",";
  }
  vocab += "\"ab\":256,\"abc\":257";
  const std::string merges = pair_merges ? R"([["a","b"],["ab","c"]])" : R"(["a b","ab c"])";
  return R"({"version":"1.0","added_tokens":[{"id":258,"content":"<|x|>","special":true}],)"
         R"("normalizer":)" + normalizer + R"(,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},)"
         R"("decoder":{"type":"ByteLevel"},"model":{"type":")" + model_type + R"(","vocab":{)" + vocab +
         R"(},"merges":)" + merges + "}}";
}

TEST(TokenizerLoadTest, MergesAsStringsAndAsPairsAreTheSame) {
  auto strings = Tokenizer::FromJson(TinyTokenizerJson(false), "tiny.json");
  auto pairs = Tokenizer::FromJson(TinyTokenizerJson(true), "tiny.json");
  ASSERT_TRUE(strings.ok()) << strings.status().ToString();
  ASSERT_TRUE(pairs.ok()) << pairs.status().ToString();
  auto a = (*strings)->Encode("abca<|x|>");
  auto b = (*pairs)->Encode("abca<|x|>");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->size(), 3u);
  EXPECT_EQ((*a)[0], 257);
  EXPECT_EQ((*a)[2], 258);
  EXPECT_EQ((*strings)->Decode(*a), "abca<|x|>");
  EXPECT_EQ((*strings)->vocab_size(), 259);
}

TEST(TokenizerLoadTest, MissingFileIsNotFoundAndNamesThePath) {
  auto tok = Tokenizer::Load("/nonexistent/dir/tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kNotFound);
  EXPECT_NE(tok.status().message().find("/nonexistent/dir/tokenizer.json"), std::string::npos)
      << tok.status().message();
}

TEST(TokenizerLoadTest, MalformedJsonIsInvalidArgument) {
  auto tok = Tokenizer::FromJson(R"({"model": {"type": "BPE", "vocab": {)", "broken.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tok.status().message().find("broken.json"), std::string::npos) << tok.status().message();
}

TEST(TokenizerLoadTest, UnsupportedModelTypeAndNormalizerAreRefusedByName) {
  auto unigram = Tokenizer::FromJson(TinyTokenizerJson(false, "Unigram"), "uni.json");
  ASSERT_FALSE(unigram.ok());
  EXPECT_EQ(unigram.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(unigram.status().message().find("uni.json: model.type \"Unigram\""), std::string::npos)
      << unigram.status().message();

  auto nfc = Tokenizer::FromJson(TinyTokenizerJson(false, "BPE", R"({"type":"NFC"})"), "nfc.json");
  ASSERT_FALSE(nfc.ok());
  EXPECT_EQ(nfc.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(nfc.status().message().find("nfc.json: normalizer \"NFC\""), std::string::npos)
      << nfc.status().message();
}

TEST(TokenizerLoadTest, MergeOfUnknownTokenIsRefused) {
  std::string json = TinyTokenizerJson(false);
  json.replace(json.find("\"ab c\""), 6, "\"ab q9\"");
  auto tok = Tokenizer::FromJson(json, "bad.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("bad.json: model.merges[1]"), std::string::npos) << tok.status().message();
}

}  // namespace
}  // namespace rag

#endif  // RAG_HAVE_TOKENIZER
