// WordPieceTokenizer on a tiny vocabulary written here (no model needed): basic tokenization
// (cleaning, accents, lowercase, punctuation, CJK), greedy longest-match pieces, [UNK] rules,
// added tokens, truncation, and the errors of malformed input. The real vocabulary is covered by
// engine_bert_embedder_test.cc against Hugging Face.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/bert/wordpiece.h"

namespace rag {
namespace {

const std::vector<std::string> kVocab = {"[PAD]",  "[UNK]", "[CLS]", "[SEP]", "un",   "##aff",
                                         "##able", "hello", "world", ",",     "!",    "cafe",
                                         "北",     "京",    "a",     "##a",   "runn", "##ing",
                                         "run",    "i",     ".",     "##s",   "it",   "'"};

int32_t Id(const std::string& t) {
  for (size_t i = 0; i < kVocab.size(); ++i) {
    if (kVocab[i] == t) return static_cast<int32_t>(i);
  }
  return -1;
}

std::vector<int32_t> Ids(const std::vector<std::string>& tokens) {
  std::vector<int32_t> out;
  for (const auto& t : tokens) out.push_back(Id(t));
  return out;
}

class WordPieceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tok = WordPieceTokenizer::FromVocab(kVocab, WordPieceOptions());
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    tok_ = std::move(tok).value();
  }
  std::vector<int32_t> Pieces(const std::string& text) {
    auto ids = tok_->EncodePieces(text);
    EXPECT_TRUE(ids.ok()) << ids.status().ToString();
    return ids.ok() ? *ids : std::vector<int32_t>{};
  }
  std::unique_ptr<WordPieceTokenizer> tok_;
};

TEST_F(WordPieceTest, GreedyLongestMatchWithContinuations) {
  EXPECT_EQ(Pieces("unaffable"), Ids({"un", "##aff", "##able"}));
  EXPECT_EQ(Pieces("running runs"), Ids({"runn", "##ing", "run", "##s"}));
  EXPECT_EQ(Pieces("aaa"), Ids({"a", "##a", "##a"}));
}

TEST_F(WordPieceTest, WordThatCannotBeCutIsOneUnk) {
  EXPECT_EQ(Pieces("unaffablex hello"), Ids({"[UNK]", "hello"}));
}

TEST_F(WordPieceTest, NormalizesCaseAccentsWhitespaceAndControls) {
  EXPECT_EQ(Pieces("  HeLLo,\tWORLD!\n"), Ids({"hello", ",", "world", "!"}));
  EXPECT_EQ(Pieces("Café"), Ids({"cafe"}));
  EXPECT_EQ(Pieces("Cafe\u0301"), Ids({"cafe"}));        // combining acute accent dropped
  EXPECT_EQ(Pieces("hel\x01lo\u200b"), Ids({"hello"}));  // control and format characters dropped
  EXPECT_EQ(Pieces("hello\u00a0world"), Ids({"hello", "world"}));  // no-break space separates
}

TEST_F(WordPieceTest, PunctuationAndCjkAreWordsOfTheirOwn) {
  EXPECT_EQ(Pieces("it's."), Ids({"it", "'", "[UNK]", "."}));
  EXPECT_EQ(Pieces("hello北京world"), Ids({"hello", "北", "京", "world"}));
}

TEST_F(WordPieceTest, LongWordIsUnk) {
  EXPECT_EQ(Pieces(std::string(100, 'a')).size(), 100u);
  EXPECT_EQ(Pieces(std::string(101, 'a')), Ids({"[UNK]"}));
}

TEST_F(WordPieceTest, SpecialTokensInTextAreRecognized) {
  EXPECT_EQ(Pieces("hello[SEP]world [CLS]"), Ids({"hello", "[SEP]", "world", "[CLS]"}));
  EXPECT_EQ(Pieces("[sep]"),
            Ids({"[UNK]", "[UNK]", "[UNK]"}));  // case matters; "[", "sep", "]" unknown
}

TEST_F(WordPieceTest, EncodeAddsClsSepAndTruncatesKeepingSep) {
  auto ids = tok_->Encode("hello world hello world", 4);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, Ids({"[CLS]", "hello", "world", "[SEP]"}));
  auto empty = tok_->Encode("", 8);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, Ids({"[CLS]", "[SEP]"}));
  EXPECT_EQ(tok_->Encode("hello", 1).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(WordPieceTest, InvalidUtf8IsAnErrorNamingTheOffset) {
  auto ids = tok_->EncodePieces("ok \xC3\x28");
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ids.status().message().find("byte 3"), std::string::npos) << ids.status().message();
  EXPECT_FALSE(tok_->EncodePieces("\xED\xA0\x80").ok());  // a surrogate
  EXPECT_FALSE(tok_->EncodePieces("\xC0\xAF").ok());      // overlong
}

TEST(WordPieceJsonTest, RefusesOtherModelsAndMissingTokens) {
  const std::string bpe =
      R"({"normalizer":{"type":"BertNormalizer"},"pre_tokenizer":{"type":"BertPreTokenizer"},
      "model":{"type":"BPE","vocab":{"a":0}}})";
  auto r = WordPieceTokenizer::FromJson(bpe, "t.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("t.json: model.type"), std::string::npos);
  const std::string no_unk =
      R"({"normalizer":{"type":"BertNormalizer"},"pre_tokenizer":{"type":"BertPreTokenizer"},
      "model":{"type":"WordPiece","vocab":{"[CLS]":0,"[SEP]":1}}})";
  r = WordPieceTokenizer::FromJson(no_unk, "t.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("[UNK]"), std::string::npos) << r.status().message();
  EXPECT_EQ(WordPieceTokenizer::FromJson("{", "t.json").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(WordPieceTokenizer::Load("/nonexistent/tokenizer.json").status().code(),
            StatusCode::kNotFound);
}

TEST(WordPieceJsonTest, CasedOptionsFromJson) {
  const std::string json =
      R"({"normalizer":{"type":"BertNormalizer","lowercase":false,"strip_accents":null},
      "pre_tokenizer":{"type":"BertPreTokenizer"},
      "model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0,"[CLS]":1,"[SEP]":2,"Café":3,"cafe":4}}})";
  auto tok = WordPieceTokenizer::FromJson(json, "t.json");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  auto ids = (*tok)->EncodePieces("Café cafe CAFE");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<int32_t>{3, 4, 0}));
}

}  // namespace
}  // namespace rag
