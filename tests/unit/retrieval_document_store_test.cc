#include "retrieval/document_store.h"

#include <gtest/gtest.h>

#include "retrieval/bm25_query.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

Chunk MakeChunk(int page, const std::string& text, const std::string& section = "") {
  Chunk c;
  c.page = page;
  c.start = 0;
  c.end = text.size();
  c.text = text;
  c.section = section;
  return c;
}

class DocumentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = DocumentStore::Open(dir_.file("rag.db"));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }

  int64_t AddReady(const std::string& collection, const std::string& hash,
                   const std::vector<Chunk>& chunks, const std::string& source_path = "") {
    NewDocument doc;
    doc.collection = collection;
    doc.content_hash = hash;
    doc.filename = hash + ".txt";
    doc.source_path = source_path;
    bool existed = true;
    auto rec = store_->CreateDocument(doc, &existed);
    EXPECT_TRUE(rec.ok());
    EXPECT_FALSE(existed);
    EXPECT_TRUE(store_->StoreChunks(rec->id, "Title " + hash, "text", 2, chunks).ok());
    return rec->id;
  }

  testing::TempDir dir_;
  std::unique_ptr<DocumentStore> store_;
};

TEST_F(DocumentStoreTest, StoresAndFindsChunksWithPagesAndSections) {
  const int64_t id = AddReady("default", "h1",
                              {MakeChunk(1, "Apt installs packages from the archive."),
                               MakeChunk(2, "The kernel boots the machine.", "Booting")});
  auto doc = store_->GetDocument(id);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->status, "ready");
  EXPECT_EQ(doc->chunks, 2);
  EXPECT_EQ(doc->pages, 2);
  EXPECT_EQ(doc->title, "Title h1");

  auto hits = store_->SearchBm25(BuildFtsQuery("How does the kernel boot?"), {}, 5);
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].chunk.page, 2);
  EXPECT_EQ((*hits)[0].chunk.section, "Booting");
  EXPECT_EQ((*hits)[0].chunk.title, "Title h1");
  EXPECT_GT((*hits)[0].score, 0);
}

TEST_F(DocumentStoreTest, PorterStemmingMatchesInflections) {
  AddReady("default", "h1", {MakeChunk(1, "Installing packages is done with apt.")});
  auto hits = store_->SearchBm25(BuildFtsQuery("install package"), {}, 5);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 1u);
}

TEST_F(DocumentStoreTest, RanksTheMoreRelevantChunkFirst) {
  AddReady("default", "h1",
           {MakeChunk(1, "Debian releases are named after Toy Story characters. Toy Story!"),
            MakeChunk(2, "Debian has many packages."),
            MakeChunk(3, "Release codenames come from Toy Story films.")});
  auto hits = store_->SearchBm25(BuildFtsQuery("Where do the Toy Story release names come from?"), {}, 3);
  ASSERT_TRUE(hits.ok());
  ASSERT_GE(hits->size(), 2u);
  EXPECT_NE((*hits)[0].chunk.page, 2);
  for (size_t i = 1; i < hits->size(); ++i) EXPECT_GE((*hits)[i - 1].score, (*hits)[i].score);
}

TEST_F(DocumentStoreTest, SameContentTwiceIsStoredOnce) {
  const int64_t id = AddReady("default", "same", {MakeChunk(1, "alpha beta")});
  NewDocument again;
  again.content_hash = "same";
  again.filename = "copy.txt";
  bool existed = false;
  auto rec = store_->CreateDocument(again, &existed);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(existed);
  EXPECT_EQ(rec->id, id);
  // Another collection is another document.
  again.collection = "other";
  rec = store_->CreateDocument(again, &existed);
  ASSERT_TRUE(rec.ok());
  EXPECT_FALSE(existed);
  EXPECT_NE(rec->id, id);
}

TEST_F(DocumentStoreTest, ChangedFileAtSamePathReplacesOldChunks) {
  const int64_t v1 = AddReady("default", "v1", {MakeChunk(1, "The old wording mentions zebras.")}, "/docs/a.txt");
  const int64_t v2 = AddReady("default", "v2", {MakeChunk(1, "The new wording mentions giraffes.")}, "/docs/a.txt");
  EXPECT_EQ(store_->GetDocument(v1).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetDocument(v2).ok());
  auto old_hits = store_->SearchBm25(BuildFtsQuery("zebras"), {}, 5);
  ASSERT_TRUE(old_hits.ok());
  EXPECT_TRUE(old_hits->empty());
  auto new_hits = store_->SearchBm25(BuildFtsQuery("giraffes"), {}, 5);
  ASSERT_TRUE(new_hits.ok());
  EXPECT_EQ(new_hits->size(), 1u);
}

TEST_F(DocumentStoreTest, DeleteRemovesChunksFromSearch) {
  const int64_t id = AddReady("default", "h", {MakeChunk(1, "Unique marmalade sentence.")});
  ASSERT_TRUE(store_->DeleteDocument(id).ok());
  auto hits = store_->SearchBm25(BuildFtsQuery("marmalade"), {}, 5);
  ASSERT_TRUE(hits.ok());
  EXPECT_TRUE(hits->empty());
  EXPECT_EQ(store_->DeleteDocument(id).code(), StatusCode::kNotFound);
  auto counts = store_->CountAll();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->documents, 0);
  EXPECT_EQ(counts->chunks, 0);
}

TEST_F(DocumentStoreTest, FiltersByCollectionAndDocument) {
  const int64_t a = AddReady("alpha", "a", {MakeChunk(1, "Shared topic: volcanoes erupt.")});
  const int64_t b = AddReady("beta", "b", {MakeChunk(1, "Shared topic: volcanoes sleep.")});
  SearchFilter only_beta;
  only_beta.collection = "beta";
  auto hits = store_->SearchBm25(BuildFtsQuery("volcanoes"), only_beta, 5);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].chunk.document_id, b);
  SearchFilter allowed;
  allowed.collections = {"alpha"};
  hits = store_->SearchBm25(BuildFtsQuery("volcanoes"), allowed, 5);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].chunk.document_id, a);
  SearchFilter by_doc;
  by_doc.document_id = a;
  hits = store_->SearchBm25(BuildFtsQuery("volcanoes"), by_doc, 5);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].chunk.document_id, a);
}

TEST_F(DocumentStoreTest, QueuedDocumentsAreNotSearchableAndAreListedAsPending) {
  NewDocument doc;
  doc.content_hash = "q";
  doc.filename = "q.txt";
  auto rec = store_->CreateDocument(doc, nullptr);
  ASSERT_TRUE(rec.ok());
  auto pending = store_->ListDocumentsWithStatus({"queued", "processing"});
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].id, rec->id);
  ASSERT_TRUE(store_->SetStatus(rec->id, "failed", "q.txt: bad").ok());
  auto got = store_->GetDocument(rec->id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, "failed");
  EXPECT_EQ(got->error, "q.txt: bad");
}

TEST_F(DocumentStoreTest, StoringTwiceAfterACrashKeepsOneCopyOfEachChunk) {
  NewDocument doc;
  doc.content_hash = "retry";
  doc.filename = "r.txt";
  auto rec = store_->CreateDocument(doc, nullptr);
  ASSERT_TRUE(rec.ok());
  ASSERT_TRUE(store_->StoreChunks(rec->id, "T", "text", 1, {MakeChunk(1, "penguins waddle")}).ok());
  ASSERT_TRUE(store_->StoreChunks(rec->id, "T", "text", 1, {MakeChunk(1, "penguins waddle")}).ok());
  auto hits = store_->SearchBm25(BuildFtsQuery("penguins"), {}, 5);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 1u);
}

TEST_F(DocumentStoreTest, DataSurvivesReopening) {
  AddReady("default", "persist", {MakeChunk(1, "Persistence of kiwis.")});
  store_.reset();
  auto reopened = DocumentStore::Open(dir_.file("rag.db"));
  ASSERT_TRUE(reopened.ok());
  auto hits = (*reopened)->SearchBm25(BuildFtsQuery("kiwis"), {}, 5);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 1u);
}

TEST(DocumentStoreOpen, UnwritableOrGarbageDatabaseIsAClearError) {
  auto missing_dir = DocumentStore::Open("/nonexistent-dir-for-rag-test/rag.db");
  EXPECT_FALSE(missing_dir.ok());
  testing::TempDir dir;
  FILE* f = fopen(dir.file("rag.db").c_str(), "wb");
  fputs("this is not a database, just text that is long enough to fill a header page.....", f);
  fclose(f);
  auto garbage = DocumentStore::Open(dir.file("rag.db"));
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().code(), StatusCode::kDataLoss) << garbage.status().ToString();
}

TEST(Bm25Query, DropsStopWordsAndQuotesTerms) {
  EXPECT_EQ(BuildFtsQuery("How does one pronounce Debian?"), "\"pronounce\" OR \"debian\"");
  // FTS5 syntax in a question is never interpreted.
  EXPECT_EQ(BuildFtsQuery("NEAR(apt dpkg) AND title:\"x\" *"),
            "\"near\" OR \"apt\" OR \"dpkg\" OR \"title\" OR \"x\"");
  EXPECT_EQ(BuildFtsQuery("what is it?"), "\"what\" OR \"is\" OR \"it\"");
  EXPECT_EQ(BuildFtsQuery("?!"), "");
}

TEST_F(DocumentStoreTest, HostileQuestionsDoNotBreakSearch) {
  AddReady("default", "h", {MakeChunk(1, "Plain text about AND and OR operators.")});
  for (const char* q : {"\"", "AND", "OR OR OR", "*", "col:umn", "NOT", "((", "日本語", "a\"b"}) {
    auto hits = store_->SearchBm25(BuildFtsQuery(q), {}, 5);
    EXPECT_TRUE(hits.ok()) << q << ": " << hits.status().ToString();
  }
}

}  // namespace
}  // namespace rag

namespace rag {
namespace {

TEST(DocumentStoreHash, HasContentHashSeesEveryCollection) {
  testing::TempDir dir;
  auto store = DocumentStore::Open(dir.file("rag.db"));
  ASSERT_TRUE(store.ok());
  NewDocument doc;
  doc.collection = "other";
  doc.content_hash = "abc";
  doc.filename = "a.txt";
  ASSERT_TRUE((*store)->CreateDocument(doc, nullptr).ok());
  EXPECT_TRUE((*store)->HasContentHash("abc").value());
  EXPECT_FALSE((*store)->HasContentHash("abd").value());
}

}  // namespace
}  // namespace rag

namespace rag {
namespace {

// Meta settings survive a reopen; ReadyChunkIds lists the chunks of ready documents only.
TEST_F(DocumentStoreTest, MetaAndReadyChunkIds) {
  auto missing = store_->GetMeta("embedder");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(store_->SetMeta("embedder", "all-MiniLM-L6-v2:384").ok());
  ASSERT_TRUE(store_->SetMeta("embedder", "bge-small-en-v1.5:384").ok());  // replaced

  const int64_t a = AddReady("default", "ha", {MakeChunk(1, "one"), MakeChunk(1, "two")});
  NewDocument pending;
  pending.collection = "default";
  pending.content_hash = "hp";
  pending.filename = "p.txt";
  bool existed = true;
  ASSERT_TRUE(store_->CreateDocument(pending, &existed).ok());  // no chunks, not ready
  auto ids = store_->ReadyChunkIds();
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  auto chunks = store_->GetDocumentChunks(a);
  ASSERT_TRUE(chunks.ok());
  ASSERT_EQ(ids->size(), 2u);
  EXPECT_EQ((*ids)[0], (*chunks)[0].id);
  EXPECT_EQ((*ids)[1], (*chunks)[1].id);
  ASSERT_TRUE(store_->DeleteDocument(a).ok());
  EXPECT_TRUE(store_->ReadyChunkIds()->empty());

  store_.reset();
  auto reopened = DocumentStore::Open(dir_.file("rag.db"));
  ASSERT_TRUE(reopened.ok());
  auto value = (*reopened)->GetMeta("embedder");
  ASSERT_TRUE(value.ok() && value->has_value());
  EXPECT_EQ(**value, "bge-small-en-v1.5:384");
}

}  // namespace
}  // namespace rag
