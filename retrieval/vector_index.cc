#include "retrieval/vector_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <faiss/Index.h>
#include <faiss/IndexFlatCodes.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/impl/HNSW.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <omp.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <unordered_set>

#include "common/file_util.h"

namespace rag {

namespace {

using idx_t = faiss::Index::idx_t;

// The label of a removed vector that a non-removable index (HNSW) still holds. Real ids are
// >= 0 and FAISS uses -1 for "no result".
constexpr idx_t kTombstone = -2;

// vectors.faiss layout (little-endian, x86-64):
//   0  char[8] kMagic        8  u32 format version   12 u32 dim
//   16 u32 factory length    20 u32 reserved (0)      24 u64 FAISS payload length
//   32 factory string, then the FAISS payload (faiss::write_index of an IndexIDMap2),
//   then u64 checksum (Checksum64) of every byte before it.
constexpr char kMagic[8] = {'R', 'A', 'G', 'V', 'E', 'C', 'X', '1'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderSize = 32;
constexpr size_t kTrailerSize = 8;

const char kReindexHint[] = "; run `rag reindex` to rebuild it from the database";

// A fast 64-bit checksum (multiply-rotate over 8-byte words, murmur3 finaliser). It guards
// against truncation and corruption, not tampering; SHA-256 would add seconds at 1M vectors.
uint64_t Checksum64(std::string_view s) {
  constexpr uint64_t kM1 = 0x87c37b91114253d5ULL, kM2 = 0x4cf5ad432745937fULL;
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h ^= w * kM1;
    h = ((h << 31) | (h >> 33)) * kM2;
  }
  uint64_t tail = 0;
  if (i < s.size()) std::memcpy(&tail, s.data() + i, s.size() - i);  // never from a null data()
  h ^= tail * kM1;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

template <typename T>
void PutRaw(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}
template <typename T>
T GetRaw(std::string_view s, size_t off) {
  T v;
  std::memcpy(&v, s.data() + off, sizeof(v));
  return v;
}

struct StringWriter : faiss::IOWriter {
  std::string* out;
  explicit StringWriter(std::string* o) : out(o) { name = "vector index buffer"; }
  size_t operator()(const void* ptr, size_t size, size_t nitems) override {
    out->append(static_cast<const char*>(ptr), size * nitems);
    return nitems;
  }
};

struct ViewReader : faiss::IOReader {
  std::string_view data;
  size_t pos = 0;
  explicit ViewReader(std::string_view d) : data(d) { name = "vector index file"; }
  size_t operator()(void* ptr, size_t size, size_t nitems) override {
    if (size == 0) return 0;
    const size_t n = std::min(nitems, (data.size() - pos) / size);
    if (n == 0) return 0;  // FAISS reads empty vectors into a null data(): no memcpy from/to null
    std::memcpy(ptr, data.data() + pos, n * size);
    pos += n * size;
    return n;
  }
};

// Keeps live vectors (and, with a filter, matching ids). FAISS passes positions of the
// sub-index; id_map translates them to our ids.
struct LiveSelector : faiss::IDSelector {
  const std::vector<idx_t>& id_map;
  const std::function<bool(int64_t)>& filter;
  LiveSelector(const std::vector<idx_t>& m, const std::function<bool(int64_t)>& f) : id_map(m), filter(f) {}
  bool is_member(idx_t pos) const override {
    const idx_t id = id_map[pos];
    return id >= 0 && (!filter || filter(id));
  }
};

// Copies rows into out with unit L2 norm. InvalidArgument for a zero or non-finite row.
Status NormalizeRows(const float* x, size_t n, int dim, std::vector<float>* out, const char* what) {
  out->assign(x, x + n * dim);
  for (size_t i = 0; i < n; ++i) {
    float* row = out->data() + i * dim;
    double sq = 0;
    for (int j = 0; j < dim; ++j) sq += static_cast<double>(row[j]) * row[j];
    if (!std::isfinite(sq) || sq == 0) {
      std::string message = what;
      if (n > 1) message.append(" ").append(std::to_string(i));
      message.append(" is zero or not finite; it has no direction to index");
      return InvalidArgument(message);
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(sq));
    for (int j = 0; j < dim; ++j) row[j] *= inv;
  }
  return Status::Ok();
}

StatusOr<std::string> ReadWholeFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("no vector index at " + path);
    return InvalidArgument("cannot open " + path + ": " + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("not a regular file: " + path);
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::read(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return DataLoss("read error in " + path + (n < 0 ? std::string(": ") + std::strerror(errno) : ""));
    }
    off += static_cast<size_t>(n);
  }
  ::close(fd);
  return data;
}

}  // namespace

namespace {

// A fresh sub-index for factory, configured; errors as in VectorIndex::Create.
StatusOr<std::unique_ptr<faiss::Index>> MakeSubIndex(int dim, const std::string& factory) {
  std::unique_ptr<faiss::Index> sub;
  try {
    sub.reset(faiss::index_factory(dim, factory.c_str(), faiss::METRIC_INNER_PRODUCT));
  } catch (const std::exception& e) {
    return InvalidArgument("unknown vector index type '" + factory + "' (" + e.what() + ")");
  }
  if (dynamic_cast<faiss::IndexIDMap*>(sub.get()) || dynamic_cast<faiss::IndexIDMap2*>(sub.get())) {
    return InvalidArgument("vector index type '" + factory + "' must not name an IDMap: ids are always mapped");
  }
  if (!sub->is_trained) {
    return InvalidArgument("vector index type '" + factory +
                           "' needs training before the first add (IVF, PQ); use Flat or HNSW");
  }
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(sub.get())) {
    hnsw->hnsw.efConstruction = VectorIndex::kHnswEfConstruction;
    hnsw->hnsw.efSearch = VectorIndex::kHnswEfSearch;
  }
  return sub;
}

// A reader-writer lock that prefers writers: once a writer waits, new readers queue behind it.
// std::shared_mutex (glibc's rwlock) prefers readers, so a steady stream of searches would
// starve ingestion forever.
class WriterPreferringMutex {
 public:
  void lock() {
    std::unique_lock lock(mu_);
    ++writers_waiting_;
    cv_.wait(lock, [&] { return !writer_active_ && readers_ == 0; });
    --writers_waiting_;
    writer_active_ = true;
  }
  void unlock() {
    {
      std::lock_guard lock(mu_);
      writer_active_ = false;
    }
    cv_.notify_all();
  }
  void lock_shared() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !writer_active_ && writers_waiting_ == 0; });
    ++readers_;
  }
  void unlock_shared() {
    bool last;
    {
      std::lock_guard lock(mu_);
      last = --readers_ == 0;
    }
    if (last) cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int readers_ = 0;
  int writers_waiting_ = 0;
  bool writer_active_ = false;
};

// Runs FAISS single-threaded on this thread for the scope (OpenMP's thread count is a per-thread
// setting, so other threads keep theirs). One query gains nothing from a parallel region: FAISS's
// HNSW search still starts one per call, each worker clears a visited table of ntotal entries,
// and idle workers spin; measured at 10k x 384 on 2 busy cores: 12 ms a query vs 1.8 ms.
class SingleThreadedOmp {
 public:
  SingleThreadedOmp() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SingleThreadedOmp() { omp_set_num_threads(saved_); }
  SingleThreadedOmp(const SingleThreadedOmp&) = delete;
  SingleThreadedOmp& operator=(const SingleThreadedOmp&) = delete;

 private:
  const int saved_;
};

}  // namespace

struct VectorIndex::Impl {
  mutable WriterPreferringMutex mu;
  std::unique_ptr<faiss::IndexIDMap2> index;  // owns its sub-index
  faiss::IndexHNSW* hnsw = nullptr;           // the sub-index when it is HNSW
  bool removable = false;                     // sub-index removes in place (flat codes)
  int64_t dead = 0;                           // id_map entries equal to kTombstone

  int64_t live() const { return index->ntotal - dead; }

  void Classify() {
    hnsw = dynamic_cast<faiss::IndexHNSW*>(index->index);
    removable = dynamic_cast<faiss::IndexFlatCodes*>(index->index) != nullptr;
  }

  // Rebuilds the index from its live vectors. Caller holds mu exclusively.
  Status CompactLocked(int dim, const std::string& factory) {
    if (dead == 0) return Status::Ok();
    RAG_ASSIGN_OR_RETURN(std::unique_ptr<faiss::Index> sub, MakeSubIndex(dim, factory));
    try {
      const faiss::IndexIDMap2& old = *index;
      const size_t n_live = static_cast<size_t>(live());
      std::vector<float> x(n_live * dim);
      std::vector<idx_t> ids;
      ids.reserve(n_live);
      for (idx_t pos = 0; pos < old.ntotal; ++pos) {
        if (old.id_map[pos] < 0) continue;
        old.index->reconstruct(pos, x.data() + ids.size() * dim);
        ids.push_back(old.id_map[pos]);
      }
      auto fresh = std::make_unique<faiss::IndexIDMap2>(sub.release());
      fresh->own_fields = true;
      fresh->add_with_ids(static_cast<idx_t>(ids.size()), x.data(), ids.data());
      index = std::move(fresh);
      dead = 0;
      Classify();
    } catch (const std::exception& e) {
      return Internal(std::string("compacting the vector index failed: ") + e.what());
    }
    return Status::Ok();
  }
};

VectorIndex::VectorIndex(int dim, std::string factory, std::unique_ptr<Impl> impl)
    : dim_(dim), factory_(std::move(factory)), impl_(std::move(impl)) {}

VectorIndex::~VectorIndex() = default;

std::string VectorIndex::DefaultFactory(int64_t expected_vectors) {
  return expected_vectors < kFlatLimit ? "Flat" : "HNSW32";
}

StatusOr<std::unique_ptr<VectorIndex>> VectorIndex::Create(int dim, const std::string& factory) {
  if (dim < 1) return InvalidArgument("vector dimension must be positive, got " + std::to_string(dim));
  RAG_ASSIGN_OR_RETURN(std::unique_ptr<faiss::Index> sub, MakeSubIndex(dim, factory));
  auto impl = std::make_unique<Impl>();
  impl->index = std::make_unique<faiss::IndexIDMap2>(sub.release());
  impl->index->own_fields = true;
  impl->Classify();
  return std::unique_ptr<VectorIndex>(new VectorIndex(dim, factory, std::move(impl)));
}

Status VectorIndex::Add(const std::vector<int64_t>& ids, const float* vectors) {
  if (ids.empty()) return Status::Ok();
  if (vectors == nullptr) return InvalidArgument("no vectors given for " + std::to_string(ids.size()) + " ids");
  std::unordered_set<int64_t> batch;
  batch.reserve(ids.size());
  for (int64_t id : ids) {
    if (id < 0) return InvalidArgument("vector id must not be negative, got " + std::to_string(id));
    if (!batch.insert(id).second) return InvalidArgument("vector id " + std::to_string(id) + " appears twice in one batch");
  }
  std::vector<float> x;
  RAG_RETURN_IF_ERROR(NormalizeRows(vectors, ids.size(), dim_, &x, "vector"));

  std::unique_lock lock(impl_->mu);
  for (int64_t id : ids) {
    if (impl_->index->rev_map.count(id)) {
      return AlreadyExists("vector id " + std::to_string(id) + " is already indexed; remove it before adding it again");
    }
  }
  try {
    impl_->index->add_with_ids(static_cast<idx_t>(ids.size()), x.data(), ids.data());
  } catch (const std::exception& e) {
    return Internal(std::string("adding vectors to the index failed: ") + e.what());
  }
  return Status::Ok();
}

Status VectorIndex::Remove(const std::vector<int64_t>& ids) {
  std::unique_lock lock(impl_->mu);
  faiss::IndexIDMap2& index = *impl_->index;
  std::vector<idx_t> present;
  for (int64_t id : ids) {
    if (index.rev_map.count(id)) present.push_back(id);
  }
  if (present.empty()) return Status::Ok();
  try {
    if (impl_->removable) {
      faiss::IDSelectorBatch sel(present.size(), present.data());
      index.remove_ids(sel);
      return Status::Ok();
    }
  } catch (const std::exception& e) {
    return Internal(std::string("removing vectors from the index failed: ") + e.what());
  }
  for (idx_t id : present) {
    auto it = index.rev_map.find(id);
    if (it == index.rev_map.end()) continue;  // listed twice
    index.id_map[it->second] = kTombstone;
    index.rev_map.erase(it);
    ++impl_->dead;
  }
  // Amortised: a rebuild after as many removals as there are live vectors left.
  if (impl_->dead >= 1024 && impl_->dead > impl_->live()) return impl_->CompactLocked(dim_, factory_);
  return Status::Ok();
}

Status VectorIndex::Compact() {
  std::unique_lock lock(impl_->mu);
  return impl_->CompactLocked(dim_, factory_);
}

StatusOr<std::vector<VectorHit>> VectorIndex::Search(const float* query, int k,
                                                     const std::function<bool(int64_t)>& filter) const {
  if (k < 1) return InvalidArgument("top-k must be at least 1, got " + std::to_string(k));
  if (query == nullptr) return InvalidArgument("no query vector");
  std::vector<float> q;
  RAG_RETURN_IF_ERROR(NormalizeRows(query, 1, dim_, &q, "query vector"));

  std::shared_lock lock(impl_->mu);
  const faiss::IndexIDMap2& index = *impl_->index;
  const int64_t live = impl_->live();
  if (live == 0) return std::vector<VectorHit>{};
  const idx_t kk = std::min<idx_t>(k, index.ntotal);
  const bool select = static_cast<bool>(filter) || impl_->dead > 0;
  LiveSelector sel(index.id_map, filter);
  std::vector<float> dist(kk);
  std::vector<idx_t> labels(kk);
  std::vector<VectorHit> hits;
  SingleThreadedOmp one_thread;
  auto collect = [&] {
    hits.clear();
    for (idx_t i = 0; i < kk; ++i) {
      if (labels[i] < 0) continue;
      const idx_t id = index.id_map[labels[i]];
      // Checked again: a storage type that ignores selectors must not leak filtered ids.
      if (id >= 0 && (!filter || filter(id))) hits.push_back({id, dist[i]});
    }
  };
  try {
    if (impl_->hnsw) {
      faiss::SearchParametersHNSW params;
      params.efSearch = std::max<int>(kHnswEfSearch, static_cast<int>(kk));
      params.sel = select ? &sel : nullptr;
      impl_->hnsw->search(1, q.data(), kk, dist.data(), labels.data(), &params);
      collect();
      // A selective filter (or many tombstones) can leave the graph walk short of matches
      // that exist: scan the stored vectors exactly instead.
      if (select && static_cast<int64_t>(hits.size()) < std::min<int64_t>(kk, live)) {
        faiss::SearchParameters exact;
        exact.sel = &sel;
        impl_->hnsw->storage->search(1, q.data(), kk, dist.data(), labels.data(), &exact);
        collect();
      }
    } else {
      faiss::SearchParameters params;
      params.sel = select ? &sel : nullptr;
      index.index->search(1, q.data(), kk, dist.data(), labels.data(), &params);
      collect();
    }
  } catch (const std::exception& e) {
    return Internal(std::string("vector search failed: ") + e.what());
  }
  return hits;
}

Status VectorIndex::Save(const std::string& path) const {
  std::string data;
  {
    std::shared_lock lock(impl_->mu);
    data.append(kMagic, sizeof(kMagic));
    PutRaw<uint32_t>(&data, kFormatVersion);
    PutRaw<uint32_t>(&data, static_cast<uint32_t>(dim_));
    PutRaw<uint32_t>(&data, static_cast<uint32_t>(factory_.size()));
    PutRaw<uint32_t>(&data, 0);
    PutRaw<uint64_t>(&data, 0);  // payload length, patched below
    data += factory_;
    const size_t payload_start = data.size();
    try {
      StringWriter writer(&data);
      faiss::write_index(impl_->index.get(), &writer);
    } catch (const std::exception& e) {
      return Internal(std::string("serialising the vector index failed: ") + e.what());
    }
    const uint64_t payload = data.size() - payload_start;
    std::memcpy(data.data() + 24, &payload, sizeof(payload));
  }
  PutRaw<uint64_t>(&data, Checksum64(data));
  return WriteFileAtomic(path, data).WithPrefix("saving the vector index");
}

StatusOr<std::unique_ptr<VectorIndex>> VectorIndex::Load(const std::string& path, int expected_dim) {
  RAG_ASSIGN_OR_RETURN(std::string data, ReadWholeFile(path));
  const std::string_view all(data);
  auto corrupt = [&](const std::string& why) { return DataLoss("vector index " + path + " is " + why + kReindexHint); };
  if (all.size() < kHeaderSize + kTrailerSize) return corrupt("truncated (" + std::to_string(all.size()) + " bytes)");
  if (std::memcmp(all.data(), kMagic, sizeof(kMagic)) != 0) return corrupt("not a vector index file");
  const uint32_t version = GetRaw<uint32_t>(all, 8);
  if (version != kFormatVersion) return corrupt("of unknown format version " + std::to_string(version));
  const uint32_t dim = GetRaw<uint32_t>(all, 12);
  const uint32_t factory_len = GetRaw<uint32_t>(all, 16);
  const uint64_t payload_len = GetRaw<uint64_t>(all, 24);
  const uint64_t body = all.size() - kHeaderSize - kTrailerSize;
  if (factory_len > body || payload_len != body - factory_len) return corrupt("truncated or has a bad header");
  const std::string_view covered = all.substr(0, all.size() - kTrailerSize);
  if (GetRaw<uint64_t>(all, covered.size()) != Checksum64(covered)) return corrupt("corrupt (checksum mismatch)");
  if (static_cast<int64_t>(dim) != expected_dim) {
    return FailedPrecondition("vector index " + path + " holds " + std::to_string(dim) +
                              "-dimensional vectors but the embedder produces " + std::to_string(expected_dim) +
                              kReindexHint);
  }
  const std::string factory(all.substr(kHeaderSize, factory_len));

  std::unique_ptr<faiss::Index> read;
  try {
    ViewReader reader(all.substr(kHeaderSize + factory_len, payload_len));
    read.reset(faiss::read_index(&reader));
  } catch (const std::exception& e) {
    return corrupt(std::string("unreadable (") + e.what() + ")");
  }
  auto* map = dynamic_cast<faiss::IndexIDMap2*>(read.get());
  if (map == nullptr || map->index == nullptr || map->metric_type != faiss::METRIC_INNER_PRODUCT ||
      map->d != static_cast<int>(dim) || map->index->d != static_cast<int>(dim) ||
      static_cast<idx_t>(map->id_map.size()) != map->ntotal || map->index->ntotal != map->ntotal) {
    return corrupt("inconsistent (not an inner-product id-mapped index of its dimension)");
  }
  read.release();
  auto impl = std::make_unique<Impl>();
  impl->index.reset(map);
  impl->index->own_fields = true;
  for (idx_t id : map->id_map) {
    if (id == kTombstone) {
      ++impl->dead;
    } else if (id < 0) {
      return corrupt("inconsistent (negative vector id)");
    }
  }
  map->rev_map.erase(kTombstone);  // read_index mapped the tombstones too
  if (static_cast<int64_t>(map->rev_map.size()) != impl->live()) return corrupt("inconsistent (duplicate vector ids)");
  impl->Classify();
  if (impl->hnsw) impl->hnsw->hnsw.efSearch = kHnswEfSearch;
  return std::unique_ptr<VectorIndex>(new VectorIndex(static_cast<int>(dim), factory, std::move(impl)));
}

bool VectorIndex::Contains(int64_t id) const {
  std::shared_lock lock(impl_->mu);
  return id >= 0 && impl_->index->rev_map.count(id) > 0;
}

std::vector<int64_t> VectorIndex::Ids() const {
  std::shared_lock lock(impl_->mu);
  std::vector<int64_t> ids;
  ids.reserve(impl_->index->rev_map.size());
  for (const auto& [id, pos] : impl_->index->rev_map) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

int64_t VectorIndex::size() const {
  std::shared_lock lock(impl_->mu);
  return impl_->live();
}

int64_t VectorIndex::tombstones() const {
  std::shared_lock lock(impl_->mu);
  return impl_->dead;
}

}  // namespace rag
