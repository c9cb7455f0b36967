// What a crash leaves between the document store and the vector index, and how both get back in
// step (docs/RELIABILITY.md): regressions found by tests/integration/crash_safety_test.py.
//  - A `rag ingest` killed after it queued the new version of a changed file, rerun: the old
//    version's vectors stayed in the index (the changed file's old chunks were looked up by
//    FindBySourcePath, which found the queued new version). StoreChunks now reports every chunk
//    it deletes.
//  - Vectors of deleted chunks found at open (a crash between a deletion's commit and the index
//    save) made DenseIndex::Open embed every chunk again, which takes hours on a large folder;
//    now only those vectors are removed.
// A fake embedder (a hash of the words) counts what it embeds; no model is needed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "retrieval/dense_index.h"
#include "retrieval/document_store.h"
#include "retrieval/passage_windows.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

class CountingEmbedder : public Embedder {
 public:
  explicit CountingEmbedder(int64_t* embedded) : embedded_(embedded) {}
  const std::string& name() const override { return name_; }
  int dim() const override { return 8; }
  StatusOr<std::vector<std::vector<float>>> Embed(const std::vector<std::string>& texts) override {
    *embedded_ += static_cast<int64_t>(texts.size());
    std::vector<std::vector<float>> out;
    for (const std::string& t : texts) {
      std::vector<float> v(8, 0.0f);
      const size_t h = std::hash<std::string>{}(t);
      for (int i = 0; i < 8; ++i) v[i] = static_cast<float>((h >> (i * 8)) & 0xff) + 1.0f;
      float norm = 0;
      for (float x : v) norm += x * x;
      for (float& x : v) x /= std::sqrt(norm);
      out.push_back(std::move(v));
    }
    return out;
  }

 private:
  std::string name_ = "counting-fake";
  int64_t* embedded_;
};

class CrashRepairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = DocumentStore::Open(dir_.file("rag.db"));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }

  std::unique_ptr<DenseIndex> OpenIndex() {
    auto index = DenseIndex::Open(dir_.path(), std::make_unique<CountingEmbedder>(&embedded_),
                                  store_.get());
    EXPECT_TRUE(index.ok()) << index.status().ToString();
    return index.ok() ? std::move(*index) : nullptr;
  }

  // A queued document of `path` with these bytes' hash (what `rag ingest` creates first).
  int64_t Queue(const std::string& hash, const std::string& path) {
    NewDocument doc;
    doc.content_hash = hash;
    doc.filename = "notes.txt";
    doc.source_path = path;
    bool existed = true;
    auto rec = store_->CreateDocument(doc, &existed);
    EXPECT_TRUE(rec.ok()) << rec.status().ToString();
    EXPECT_FALSE(existed);
    return rec.ok() ? rec->id : 0;
  }

  static std::vector<Chunk> Chunks(const std::vector<std::string>& texts) {
    std::vector<Chunk> chunks;
    for (const std::string& t : texts) {
      Chunk c;
      c.end = t.size();
      c.text = t;
      chunks.push_back(c);
    }
    return chunks;
  }

  std::vector<int64_t> ChunkIds(int64_t doc) {
    std::vector<int64_t> ids;
    auto chunks = store_->GetDocumentChunks(doc);
    EXPECT_TRUE(chunks.ok());
    for (const ChunkRecord& c : *chunks) ids.push_back(c.id);
    return ids;
  }

  testing::TempDir dir_;
  std::unique_ptr<DocumentStore> store_;
  int64_t embedded_ = 0;
};

TEST_F(CrashRepairTest, StoreChunksReportsEveryChunkItDeletes) {
  const int64_t v1 = Queue("hash-v1", "/corpus/notes.txt");
  ASSERT_TRUE(store_->StoreChunks(v1, "Notes", "text", 1, Chunks({"first version one", "first version two"})).ok());
  const std::vector<int64_t> v1_chunks = ChunkIds(v1);
  ASSERT_EQ(v1_chunks.size(), 2u);
  // A killed run queued v2 (and died); the rerun queues nothing new: v2 is found and stored.
  const int64_t v2 = Queue("hash-v2", "/corpus/notes.txt");
  std::vector<int64_t> removed = {-1};
  ASSERT_TRUE(store_->StoreChunks(v2, "Notes", "text", 1, Chunks({"second version"}), &removed).ok());
  EXPECT_EQ(removed, v1_chunks);
  EXPECT_FALSE(store_->GetDocument(v1).ok());
  // Storing a document again reports its own earlier chunks.
  const std::vector<int64_t> v2_chunks = ChunkIds(v2);
  ASSERT_TRUE(store_->StoreChunks(v2, "Notes", "text", 1, Chunks({"second version again"}), &removed).ok());
  EXPECT_EQ(removed, v2_chunks);
  // A new document replaces nothing.
  const int64_t other = Queue("hash-other", "/corpus/other.txt");
  ASSERT_TRUE(store_->StoreChunks(other, "Other", "text", 1, Chunks({"other text"}), &removed).ok());
  EXPECT_TRUE(removed.empty());
}

TEST_F(CrashRepairTest, OpenRemovesVectorsOfDeletedChunksWithoutEmbeddingAgain) {
  const int64_t kept = Queue("hash-kept", "/corpus/kept.txt");
  ASSERT_TRUE(store_->StoreChunks(kept, "Kept", "text", 1, Chunks({"kept one", "kept two"})).ok());
  const int64_t gone = Queue("hash-gone", "/corpus/gone.txt");
  ASSERT_TRUE(store_->StoreChunks(gone, "Gone", "text", 1, Chunks({"gone one"})).ok());
  {
    std::unique_ptr<DenseIndex> index = OpenIndex();
    ASSERT_TRUE(index);
    EXPECT_EQ(index->size(), 3);
  }
  EXPECT_EQ(embedded_, 3);
  // The deletion commits, then the process dies before the index is saved.
  ASSERT_TRUE(store_->DeleteDocument(gone).ok());
  embedded_ = 0;
  std::unique_ptr<DenseIndex> index = OpenIndex();
  ASSERT_TRUE(index);
  EXPECT_EQ(index->size(), 2);
  EXPECT_EQ(embedded_, 0) << "the vectors of the chunks that still exist were embedded again";
  auto hits = index->Search("kept one", 10);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 2u);
  const std::vector<int64_t> stored = ChunkIds(kept);
  for (const VectorHit& h : *hits) {
    EXPECT_NE(std::find(stored.begin(), stored.end(), h.id), stored.end())
        << "chunk " << h.id << " is not stored";
  }
  // And the repair was saved: opening again finds nothing to do.
  index.reset();
  embedded_ = 0;
  index = OpenIndex();
  ASSERT_TRUE(index);
  EXPECT_EQ(index->size(), 2);
  EXPECT_EQ(embedded_, 0);
}

TEST_F(CrashRepairTest, OpenEmbedsOnlyWhatTheIndexLacks) {
  const int64_t first = Queue("hash-first", "/corpus/first.txt");
  ASSERT_TRUE(store_->StoreChunks(first, "First", "text", 1, Chunks({"first one"})).ok());
  { ASSERT_TRUE(OpenIndex()); }
  // Stored, then killed before the vectors were added and saved.
  const int64_t second = Queue("hash-second", "/corpus/second.txt");
  ASSERT_TRUE(store_->StoreChunks(second, "Second", "text", 1, Chunks({"second one", "second two"})).ok());
  embedded_ = 0;
  std::unique_ptr<DenseIndex> index = OpenIndex();
  ASSERT_TRUE(index);
  EXPECT_EQ(index->size(), 3);
  EXPECT_EQ(embedded_, 2);
}

}  // namespace
}  // namespace rag
