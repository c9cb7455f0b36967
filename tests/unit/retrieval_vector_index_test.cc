#include "retrieval/vector_index.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

// Synthetic embeddings: unit vectors around `clusters` random centres, like real text
// embeddings (topics), row-major (n, dim).
std::vector<float> Clustered(size_t n, int dim, uint32_t seed, int clusters = 64) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> centres(static_cast<size_t>(clusters) * dim);
  for (float& v : centres) v = normal(rng);
  std::vector<float> x(n * dim);
  std::uniform_int_distribution<int> pick(0, clusters - 1);
  for (size_t i = 0; i < n; ++i) {
    const float* c = &centres[static_cast<size_t>(pick(rng)) * dim];
    double sq = 0;
    for (int j = 0; j < dim; ++j) {
      x[i * dim + j] = c[j] + 0.8f * normal(rng);
      sq += x[i * dim + j] * x[i * dim + j];
    }
    for (int j = 0; j < dim; ++j) x[i * dim + j] /= static_cast<float>(std::sqrt(sq));
  }
  return x;
}

// Embedding-like data for the recall test: a mixture of 100 gaussians in a 12-dimensional
// latent space, mapped linearly to dim dimensions, plus a little isotropic noise. Text embeddings
// have a low intrinsic dimension; isotropic random vectors in 64+ dimensions have no neighbour
// structure (all similarities nearly equal), so no approximate index gets a high recall on them.
std::vector<float> LowRank(size_t n, int dim, uint32_t seed, std::mt19937* shared_map) {
  const int latent = 12;
  std::normal_distribution<float> normal;
  std::mt19937 map_rng = *shared_map;  // the same projection and centres for data and queries
  std::vector<float> proj(static_cast<size_t>(latent) * dim), centres(100 * latent);
  for (float& v : proj) v = normal(map_rng);
  for (float& v : centres) v = 2.0f * normal(map_rng);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> pick(0, 99);
  std::vector<float> x(n * dim), z(latent);
  for (size_t i = 0; i < n; ++i) {
    const float* c = &centres[static_cast<size_t>(pick(rng)) * latent];
    for (int l = 0; l < latent; ++l) z[l] = c[l] + normal(rng);
    float* row = &x[i * dim];
    double sq = 0;
    for (int j = 0; j < dim; ++j) {
      float v = 0.05f * normal(rng);
      for (int l = 0; l < latent; ++l) v += z[l] * proj[l * dim + j];
      row[j] = v;
      sq += v * v;
    }
    for (int j = 0; j < dim; ++j) row[j] /= static_cast<float>(std::sqrt(sq));
  }
  return x;
}

std::vector<int64_t> Ids(size_t n) {  // not 0..n-1: ids are chunk ids, sparse
  std::vector<int64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = 7 + 3 * static_cast<int64_t>(i);
  return ids;
}

// Exact top-k by inner product over the rows whose id passes keep.
std::vector<VectorHit> BruteForce(const std::vector<float>& x, const std::vector<int64_t>& ids, int dim,
                                  const float* q, int k, const std::function<bool(int64_t)>& keep = {}) {
  double qn = 0;
  for (int j = 0; j < dim; ++j) qn += q[j] * q[j];
  qn = std::sqrt(qn);
  std::vector<VectorHit> all;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (keep && !keep(ids[i])) continue;
    double dot = 0;
    for (int j = 0; j < dim; ++j) dot += x[i * dim + j] * q[j];
    all.push_back({ids[i], static_cast<float>(dot / qn)});
  }
  std::sort(all.begin(), all.end(), [](const VectorHit& a, const VectorHit& b) { return a.score > b.score; });
  if (all.size() > static_cast<size_t>(k)) all.resize(k);
  return all;
}

std::unique_ptr<VectorIndex> MakeIndex(int dim, const std::string& factory) {
  auto index = VectorIndex::Create(dim, factory);
  EXPECT_TRUE(index.ok()) << index.status().ToString();
  return std::move(index).value();
}

std::vector<VectorHit> MustSearch(const VectorIndex& index, const float* q, int k,
                                  const std::function<bool(int64_t)>& filter = {}) {
  auto hits = index.Search(q, k, filter);
  EXPECT_TRUE(hits.ok()) << hits.status().ToString();
  return hits.ok() ? *hits : std::vector<VectorHit>{};
}

std::vector<int64_t> HitIds(const std::vector<VectorHit>& hits) {
  std::vector<int64_t> ids;
  for (const auto& h : hits) ids.push_back(h.id);
  return ids;
}

TEST(VectorIndexTest, DefaultFactoryIsFlatForSmallCorporaAndHnswForLarge) {
  EXPECT_EQ(VectorIndex::DefaultFactory(0), "Flat");
  EXPECT_EQ(VectorIndex::DefaultFactory(99999), "Flat");
  EXPECT_EQ(VectorIndex::DefaultFactory(100000), "HNSW32");
  EXPECT_EQ(VectorIndex::DefaultFactory(5000000), "HNSW32");
}

TEST(VectorIndexTest, CreateRefusesBadArguments) {
  EXPECT_EQ(VectorIndex::Create(0, "Flat").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VectorIndex::Create(8, "NoSuchIndex").status().code(), StatusCode::kInvalidArgument);
  auto ivf = VectorIndex::Create(8, "IVF16,Flat");
  EXPECT_EQ(ivf.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ivf.status().message().find("training"), std::string::npos) << ivf.status().message();
  EXPECT_EQ(VectorIndex::Create(8, "IDMap,Flat").status().code(), StatusCode::kInvalidArgument);
  auto ok = VectorIndex::Create(8, "HNSW16");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)->dim(), 8);
  EXPECT_EQ((*ok)->factory(), "HNSW16");
  EXPECT_EQ((*ok)->size(), 0);
}

TEST(VectorIndexTest, FlatTopKIsExactAndScoresAreCosines) {
  const int dim = 32;
  const size_t n = 3000;
  auto x = Clustered(n, dim, 1);
  // Stored vectors are not normalised by the caller: the index normalises them.
  std::vector<float> scaled = x;
  for (size_t i = 0; i < n; ++i)
    for (int j = 0; j < dim; ++j) scaled[i * dim + j] *= 1.0f + static_cast<float>(i % 5);
  const auto ids = Ids(n);
  auto index = MakeIndex(dim, "Flat");
  ASSERT_TRUE(index->Add(ids, scaled.data()).ok());
  EXPECT_EQ(index->size(), static_cast<int64_t>(n));
  auto queries = Clustered(20, dim, 2);
  for (int qi = 0; qi < 20; ++qi) {
    const float* q = &queries[qi * dim];
    auto hits = MustSearch(*index, q, 10);
    auto want = BruteForce(x, ids, dim, q, 10);
    ASSERT_EQ(HitIds(hits), HitIds(want)) << "query " << qi;
    for (size_t i = 0; i < hits.size(); ++i) EXPECT_NEAR(hits[i].score, want[i].score, 1e-4);
  }
  // A stored vector is its own best match with cosine 1.
  auto self = MustSearch(*index, &scaled[123 * dim], 1);
  ASSERT_EQ(self.size(), 1u);
  EXPECT_EQ(self[0].id, ids[123]);
  EXPECT_NEAR(self[0].score, 1.0f, 1e-5);
}

TEST(VectorIndexTest, HnswRecallAt10OnTwentyThousandVectors) {
  const int dim = 64;
  const size_t n = 20000;
  std::mt19937 map(3);
  auto x = LowRank(n, dim, 4, &map);
  const auto ids = Ids(n);
  auto index = MakeIndex(dim, "HNSW32");
  ASSERT_TRUE(index->Add(ids, x.data()).ok());
  const int nq = 200;
  auto queries = LowRank(nq, dim, 5, &map);
  int found = 0;
  for (int qi = 0; qi < nq; ++qi) {
    const float* q = &queries[qi * dim];
    auto got = HitIds(MustSearch(*index, q, 10));
    std::set<int64_t> want;
    for (const auto& h : BruteForce(x, ids, dim, q, 10)) want.insert(h.id);
    for (int64_t id : got) found += want.count(id);
  }
  const double recall = found / (10.0 * nq);
  EXPECT_GE(recall, 0.95);
  std::printf("HNSW32 recall@10 on %zu x %d: %.4f\n", n, dim, recall);
}

TEST(VectorIndexTest, AddIsAllOrNothingAndRefusesDuplicates) {
  const int dim = 8;
  auto x = Clustered(4, dim, 5);
  auto index = MakeIndex(dim, "Flat");
  ASSERT_TRUE(index->Add({1, 2}, x.data()).ok());

  Status dup = index->Add({3, 2}, x.data());  // 2 exists: nothing of the batch is added
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists) << dup.ToString();
  EXPECT_FALSE(index->Contains(3));
  EXPECT_EQ(index->size(), 2);

  EXPECT_EQ(index->Add({5, 5}, x.data()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Add({-4}, x.data()).code(), StatusCode::kInvalidArgument);
  std::vector<float> zero(dim, 0.0f);
  EXPECT_EQ(index->Add({9}, zero.data()).code(), StatusCode::kInvalidArgument);
  std::vector<float> nan(dim, std::nanf(""));
  EXPECT_EQ(index->Add({9}, nan.data()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(index->size(), 2);
  EXPECT_TRUE(index->Add({}, nullptr).ok());

  // Update = remove, then add.
  ASSERT_TRUE(index->Remove({2}).ok());
  ASSERT_TRUE(index->Add({2}, &x[3 * dim]).ok());
  auto hits = MustSearch(*index, &x[3 * dim], 1);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].id, 2);
}

TEST(VectorIndexTest, SearchArgumentsAndSmallIndexes) {
  const int dim = 8;
  auto x = Clustered(3, dim, 6);
  auto index = MakeIndex(dim, "Flat");
  EXPECT_TRUE(MustSearch(*index, x.data(), 5).empty());  // empty index
  ASSERT_TRUE(index->Add({10, 11, 12}, x.data()).ok());
  EXPECT_EQ(MustSearch(*index, x.data(), 100).size(), 3u);  // k above size
  EXPECT_EQ(index->Search(x.data(), 0).status().code(), StatusCode::kInvalidArgument);
  std::vector<float> zero(dim, 0.0f);
  EXPECT_EQ(index->Search(zero.data(), 3).status().code(), StatusCode::kInvalidArgument);
}

class VectorIndexTypeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VectorIndexTypeTest, RemovedIdsAreNeverReturnedAlsoAfterSaveAndLoad) {
  const int dim = 16;
  const size_t n = 2000;
  auto x = Clustered(n, dim, 7);
  const auto ids = Ids(n);
  auto index = MakeIndex(dim, GetParam());
  ASSERT_TRUE(index->Add(ids, x.data()).ok());
  std::vector<int64_t> removed;
  std::set<int64_t> removed_set;
  for (size_t i = 0; i < n; i += 3) {
    removed.push_back(ids[i]);
    removed_set.insert(ids[i]);
  }
  removed.push_back(999999);  // absent: ignored
  ASSERT_TRUE(index->Remove(removed).ok());
  ASSERT_TRUE(index->Remove(removed).ok());  // idempotent
  const int64_t live = static_cast<int64_t>(n - removed_set.size());
  EXPECT_EQ(index->size(), live);
  EXPECT_FALSE(index->Contains(ids[0]));
  EXPECT_TRUE(index->Contains(ids[1]));

  testing::TempDir dir;
  ASSERT_TRUE(index->Save(dir.file("vectors.faiss")).ok());
  auto loaded = VectorIndex::Load(dir.file("vectors.faiss"), dim);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->size(), live);
  EXPECT_EQ((*loaded)->tombstones(), index->tombstones());

  for (const VectorIndex* idx : {index.get(), loaded->get()}) {
    for (size_t i = 0; i < n; i += 37) {  // queries at removed and kept vectors
      auto hits = MustSearch(*idx, &x[i * dim], 10);
      EXPECT_EQ(hits.size(), 10u);
      for (const auto& h : hits) EXPECT_EQ(removed_set.count(h.id), 0u) << h.id;
      if (!removed_set.count(ids[i])) {
        EXPECT_EQ(hits[0].id, ids[i]);
      }
    }
  }
  // A removed id may come back with a new vector.
  ASSERT_TRUE((*loaded)->Add({ids[0]}, &x[1 * dim]).ok());
  auto hits = MustSearch(**loaded, &x[1 * dim], 2);
  ASSERT_EQ(hits.size(), 2u);
  const auto got = HitIds(hits);
  EXPECT_EQ(std::set<int64_t>(got.begin(), got.end()), (std::set<int64_t>{ids[0], ids[1]}));
}

TEST_P(VectorIndexTypeTest, FiltersKeepOnlyMatchingIdsEvenWhenSelective) {
  const int dim = 16;
  const size_t n = 3000;
  auto x = Clustered(n, dim, 8);
  const auto ids = Ids(n);
  auto index = MakeIndex(dim, GetParam());
  ASSERT_TRUE(index->Add(ids, x.data()).ok());
  auto queries = Clustered(10, dim, 9);
  auto even = [](int64_t id) { return id % 2 == 0; };
  for (int qi = 0; qi < 10; ++qi) {
    auto hits = MustSearch(*index, &queries[qi * dim], 10, even);
    ASSERT_EQ(hits.size(), 10u);
    for (const auto& h : hits) EXPECT_TRUE(even(h.id));
    if (GetParam() == "Flat") {
      EXPECT_EQ(HitIds(hits), HitIds(BruteForce(x, ids, dim, &queries[qi * dim], 10, even)));
    }
  }
  // Five matching ids among 3000 (one document's chunks): all five, best first.
  std::set<int64_t> doc = {ids[5], ids[600], ids[1200], ids[2400], ids[2999]};
  auto in_doc = [&](int64_t id) { return doc.count(id) > 0; };
  for (int qi = 0; qi < 10; ++qi) {
    auto hits = MustSearch(*index, &queries[qi * dim], 10, in_doc);
    EXPECT_EQ(HitIds(hits), HitIds(BruteForce(x, ids, dim, &queries[qi * dim], 10, in_doc)));
  }
  EXPECT_TRUE(MustSearch(*index, queries.data(), 10, [](int64_t) { return false; }).empty());
}

TEST_P(VectorIndexTypeTest, SaveLoadRoundTripGivesTheSameResults) {
  const int dim = 24;
  const size_t n = 1500;
  auto x = Clustered(n, dim, 10);
  const auto ids = Ids(n);
  auto index = MakeIndex(dim, GetParam());
  ASSERT_TRUE(index->Add(ids, x.data()).ok());
  testing::TempDir dir;
  const std::string path = dir.file("vectors.faiss");
  ASSERT_TRUE(index->Save(path).ok());
  auto loaded = VectorIndex::Load(path, dim);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->factory(), GetParam());
  EXPECT_EQ((*loaded)->dim(), dim);
  EXPECT_EQ((*loaded)->size(), static_cast<int64_t>(n));
  auto queries = Clustered(20, dim, 11);
  for (int qi = 0; qi < 20; ++qi) {
    auto a = MustSearch(*index, &queries[qi * dim], 10);
    auto b = MustSearch(**loaded, &queries[qi * dim], 10);
    ASSERT_EQ(HitIds(a), HitIds(b));
    for (size_t i = 0; i < a.size(); ++i) EXPECT_FLOAT_EQ(a[i].score, b[i].score);
  }
  // Only the index file remains: no temporary files next to it.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

// A folder whose every document was deleted saves an index with no vectors; FAISS then reads
// empty arrays (into null pointers), which once stopped `rag serve` in the sanitizer build.
TEST_P(VectorIndexTypeTest, AnEmptyIndexSavesAndLoads) {
  const int dim = 8;
  for (bool had_vectors : {false, true}) {
    auto index = MakeIndex(dim, GetParam());
    if (had_vectors) {
      auto x = Clustered(3, dim, 15);
      ASSERT_TRUE(index->Add(Ids(3), x.data()).ok());
      ASSERT_TRUE(index->Remove(Ids(3)).ok());
      ASSERT_TRUE(index->Compact().ok());
    }
    testing::TempDir dir;
    const std::string path = dir.file("vectors.faiss");
    ASSERT_TRUE(index->Save(path).ok());
    auto loaded = VectorIndex::Load(path, dim);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ((*loaded)->size(), 0);
    const auto q = Clustered(1, dim, 16);
    EXPECT_TRUE(MustSearch(**loaded, q.data(), 5).empty());
    auto x = Clustered(2, dim, 17);
    ASSERT_TRUE((*loaded)->Add({1, 2}, x.data()).ok());
    EXPECT_EQ(MustSearch(**loaded, q.data(), 5).size(), 2u);
  }
}

TEST_P(VectorIndexTypeTest, CompactDropsTombstonesAndKeepsResults) {
  const int dim = 16;
  const size_t n = 2000;
  auto x = Clustered(n, dim, 12);
  const auto ids = Ids(n);
  auto index = MakeIndex(dim, GetParam());
  ASSERT_TRUE(index->Add(ids, x.data()).ok());
  std::vector<int64_t> removed(ids.begin(), ids.begin() + 500);
  ASSERT_TRUE(index->Remove(removed).ok());
  EXPECT_EQ(index->tombstones(), GetParam() == "Flat" ? 0 : 500);
  auto before = MustSearch(*index, &x[700 * dim], 5);
  ASSERT_TRUE(index->Compact().ok());
  EXPECT_EQ(index->tombstones(), 0);
  EXPECT_EQ(index->size(), static_cast<int64_t>(n - 500));
  auto after = MustSearch(*index, &x[700 * dim], 5);
  EXPECT_EQ(after[0].id, ids[700]);
  EXPECT_EQ(before[0].id, ids[700]);
  // Removing more than half of what is left compacts by itself.
  std::vector<int64_t> more(ids.begin() + 500, ids.begin() + 1800);
  ASSERT_TRUE(index->Remove(more).ok());
  EXPECT_EQ(index->tombstones(), 0);
  EXPECT_EQ(index->size(), 200);
  auto last = MustSearch(*index, &x[1900 * dim], 300);
  EXPECT_EQ(last.size(), 200u);
  EXPECT_EQ(last[0].id, ids[1900]);
}

TEST_P(VectorIndexTypeTest, ConcurrentSearchesWithAWriter) {
  const int dim = 16;
  const size_t n = 2000;
  auto x = Clustered(n, dim, 13);
  const auto ids = Ids(n);
  auto index = MakeIndex(dim, GetParam());
  ASSERT_TRUE(index->Add(std::vector<int64_t>(ids.begin(), ids.begin() + 1000), x.data()).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        auto hits = index->Search(&x[((t * 131 + i) % n) * dim], 5, [](int64_t id) { return id % 4 != 0; });
        if (!hits.ok() || hits->empty()) failures++;
      }
    });
  }
  for (size_t i = 1000; i < n; i += 100) {
    std::vector<int64_t> batch(ids.begin() + i, ids.begin() + i + 100);
    ASSERT_TRUE(index->Add(batch, &x[i * dim]).ok());
    ASSERT_TRUE(index->Remove({ids[i - 1000], ids[i - 999]}).ok());
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(index->size(), static_cast<int64_t>(n - 20));
}

INSTANTIATE_TEST_SUITE_P(Types, VectorIndexTypeTest, ::testing::Values("Flat", "HNSW32"),
                         [](const auto& info) { return info.param; });

// --- Files ---

std::string SavedIndex(const testing::TempDir& dir, int dim = 8, size_t n = 50) {
  auto x = Clustered(n, dim, 14);
  auto index = MakeIndex(dim, "HNSW16");
  EXPECT_TRUE(index->Add(Ids(n), x.data()).ok());
  EXPECT_TRUE(index->Remove({Ids(n)[0]}).ok());
  const std::string path = dir.file("vectors.faiss");
  EXPECT_TRUE(index->Save(path).ok());
  return path;
}

TEST(VectorIndexFileTest, MissingFileIsNotFound) {
  testing::TempDir dir;
  auto loaded = VectorIndex::Load(dir.file("vectors.faiss"), 8);
  EXPECT_EQ(loaded.status().code(), StatusCode::kNotFound) << loaded.status().ToString();
}

TEST(VectorIndexFileTest, DimensionMismatchNamesReindex) {
  testing::TempDir dir;
  const std::string path = SavedIndex(dir, 8);
  auto loaded = VectorIndex::Load(path, 384);
  ASSERT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition) << loaded.status().ToString();
  const std::string& m = loaded.status().message();
  EXPECT_NE(m.find("rag reindex"), std::string::npos) << m;
  EXPECT_NE(m.find("8"), std::string::npos) << m;
  EXPECT_NE(m.find("384"), std::string::npos) << m;
}

TEST(VectorIndexFileTest, TruncatedOrCorruptFilesAreDataLossNotCrashes) {
  testing::TempDir dir;
  const std::string path = SavedIndex(dir);
  auto good = ReadFileToString(path);
  ASSERT_TRUE(good.ok());
  const std::string bytes = *good;
  auto expect_data_loss = [&](const std::string& content, const std::string& what) {
    ASSERT_TRUE(WriteFileAtomic(path, content).ok());
    auto loaded = VectorIndex::Load(path, 8);
    EXPECT_EQ(loaded.status().code(), StatusCode::kDataLoss) << what << ": " << loaded.status().ToString();
    EXPECT_NE(loaded.status().message().find("rag reindex"), std::string::npos) << what;
  };
  expect_data_loss("", "empty");
  for (size_t len : {size_t{7}, size_t{31}, size_t{40}, bytes.size() / 2, bytes.size() - 1})
    expect_data_loss(bytes.substr(0, len), "truncated to " + std::to_string(len));
  expect_data_loss(bytes + "x", "trailing byte");
  std::mt19937 rng(15);
  std::string garbage(bytes.size(), '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  expect_data_loss(garbage, "garbage");
  expect_data_loss("RAGVECX1" + garbage.substr(8), "garbage after the magic");
  for (size_t pos : {size_t{9}, size_t{13}, size_t{40}, bytes.size() / 2, bytes.size() - 3}) {
    std::string flipped = bytes;
    flipped[pos] ^= 0x10;
    expect_data_loss(flipped, "bit flip at " + std::to_string(pos));
  }
  // The intact bytes still load.
  ASSERT_TRUE(WriteFileAtomic(path, bytes).ok());
  auto loaded = VectorIndex::Load(path, 8);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->size(), 49);
}

// A save that fails part-way (here: the file size limit stops the write, which works even for
// root) leaves the previous index file as it was and no temporary file behind.
TEST(VectorIndexFileTest, FailedSaveLeavesTheOldFileIntact) {
  testing::TempDir dir;
  const std::string path = SavedIndex(dir, 8, 50);
  auto old_bytes = ReadFileToString(path);
  ASSERT_TRUE(old_bytes.ok());

  auto big = MakeIndex(8, "Flat");
  auto x = Clustered(20000, 8, 16);
  ASSERT_TRUE(big->Add(Ids(20000), x.data()).ok());  // ~800 KB serialised

  struct sigaction ignore = {}, old_action = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &old_action), 0);
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct rlimit limit = old_limit;
  limit.rlim_cur = 64 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  Status st = big->Save(path);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  sigaction(SIGXFSZ, &old_action, nullptr);

  EXPECT_FALSE(st.ok());
  auto now = ReadFileToString(path);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(*now, *old_bytes);
  auto loaded = VectorIndex::Load(path, 8);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->size(), 49);
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(VectorIndexFileTest, SaveIntoReadOnlyDirectoryFailsCleanly) {
  if (geteuid() == 0) GTEST_SKIP() << "root writes into read-only directories";
  testing::TempDir dir;
  const std::string path = SavedIndex(dir);
  auto old_bytes = ReadFileToString(path);
  ASSERT_TRUE(old_bytes.ok());
  auto other = MakeIndex(8, "Flat");
  auto x = Clustered(10, 8, 17);
  ASSERT_TRUE(other->Add(Ids(10), x.data()).ok());
  ASSERT_EQ(chmod(dir.path().c_str(), 0555), 0);
  Status st = other->Save(path);
  chmod(dir.path().c_str(), 0755);
  EXPECT_FALSE(st.ok());
  auto now = ReadFileToString(path);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(*now, *old_bytes);
}

TEST(VectorIndexFileTest, SaveIntoMissingDirectoryFails) {
  testing::TempDir dir;
  auto index = MakeIndex(8, "Flat");
  EXPECT_FALSE(index->Save(dir.file("no/such/dir/vectors.faiss")).ok());
}

}  // namespace
}  // namespace rag
