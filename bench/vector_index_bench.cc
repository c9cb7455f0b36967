// VectorIndex benchmark: build time, memory (RSS delta) and one-query-at-a-time top-10 latency
// (p50/p99) of Flat and HNSW over synthetic embedding-like unit vectors, plus HNSW recall@10 against
// Flat on the same queries and the save/load times. Run through bench/vector_index_bench.sh.
//   vector_index_bench [--sizes 10000,100000] [--1m] [--dim 384] [--queries 1000]
//                      [--factories Flat,HNSW32] [--batch 256]
// --1m adds 1,000,000 vectors (about 1.5 GB of input plus 1.5-1.8 GB per index, minutes of HNSW
// build on a few cores). Vectors are added in batches of --batch, as ingestion would.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "retrieval/vector_index.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Resident set size in MiB (VmRSS of /proc/self/status).
double RssMiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return 0;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Embedding-like unit vectors, row-major (n, dim): a mixture of 1000 gaussians (topics) in a
// 32-dimensional latent space, mapped linearly to dim dimensions, plus isotropic noise. Text
// embeddings have a low intrinsic dimension; isotropic random vectors have no neighbour
// structure and understate what HNSW achieves on real data. Data and queries share the map.
std::vector<float> Embeddings(size_t n, int dim, uint32_t seed) {
  const int latent = 32, topics = 1000;
  std::normal_distribution<float> normal;
  std::mt19937 map_rng(12345);
  std::vector<float> proj(static_cast<size_t>(latent) * dim), centres(static_cast<size_t>(topics) * latent);
  for (float& v : proj) v = normal(map_rng);
  for (float& v : centres) v = 2.0f * normal(map_rng);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> pick(0, topics - 1);
  std::vector<float> x(n * dim), z(latent);
  for (size_t i = 0; i < n; ++i) {
    const float* c = &centres[static_cast<size_t>(pick(rng)) * latent];
    for (int l = 0; l < latent; ++l) z[l] = c[l] + normal(rng);
    float* row = &x[i * dim];
    for (int j = 0; j < dim; ++j) row[j] = 0.5f * normal(rng);
    for (int l = 0; l < latent; ++l) {
      const float* p = &proj[static_cast<size_t>(l) * dim];
      for (int j = 0; j < dim; ++j) row[j] += z[l] * p[j];
    }
    double sq = 0;
    for (int j = 0; j < dim; ++j) sq += row[j] * row[j];
    const float inv = static_cast<float>(1.0 / std::sqrt(sq));
    for (int j = 0; j < dim; ++j) row[j] *= inv;
  }
  return x;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> sizes = {"10000", "100000"};
  std::vector<std::string> factories = {"Flat", "HNSW32"};
  int dim = 384, nq = 1000, batch = 256;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value after %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--sizes") sizes = Split(next());
    else if (a == "--1m") sizes.push_back("1000000");
    else if (a == "--dim") dim = std::atoi(next().c_str());
    else if (a == "--queries") nq = std::atoi(next().c_str());
    else if (a == "--factories") factories = Split(next());
    else if (a == "--batch") batch = std::atoi(next().c_str());
    else {
      std::fprintf(stderr, "usage: %s [--sizes N,N] [--1m] [--dim D] [--queries Q] [--factories F,F] [--batch B]\n", argv[0]);
      return 2;
    }
  }
  std::printf("dim %d, %d queries one at a time, top-10, add batches of %d, %u hardware threads\n\n", dim, nq,
              batch, std::thread::hardware_concurrency());
  std::printf("| vectors | index | build s | RSS delta MiB | p50 ms | p99 ms | mean ms | recall@10 | save s | load s | file MiB |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  const std::string file = (std::filesystem::temp_directory_path() / "vector_index_bench.faiss").string();
  for (const std::string& size_text : sizes) {
    const size_t n = std::strtoull(size_text.c_str(), nullptr, 10);
    const std::vector<float> x = Embeddings(n, dim, 1);
    const std::vector<float> queries = Embeddings(nq, dim, 2);
    std::vector<int64_t> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int64_t>(i) + 1;
    std::vector<std::set<int64_t>> exact;  // Flat's answers, for recall
    for (const std::string& factory : factories) {
      malloc_trim(0);  // hand freed memory (the previous index) back, or the delta understates
      const double rss0 = RssMiB();
      const auto t0 = Clock::now();
      auto created = rag::VectorIndex::Create(dim, factory);
      if (!created.ok()) {
        std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
        return 1;
      }
      auto index = std::move(created).value();
      for (size_t i = 0; i < n; i += batch) {
        const size_t m = std::min<size_t>(batch, n - i);
        rag::Status st = index->Add(std::vector<int64_t>(ids.begin() + i, ids.begin() + i + m), &x[i * dim]);
        if (!st.ok()) {
          std::fprintf(stderr, "%s\n", st.ToString().c_str());
          return 1;
        }
      }
      const double build_s = Seconds(t0, Clock::now());
      const double rss_delta = RssMiB() - rss0;

      std::vector<double> ms;
      std::vector<std::set<int64_t>> got;
      for (int q = -10; q < nq; ++q) {  // 10 warm-up queries
        const float* query = &queries[static_cast<size_t>(std::max(q, 0)) * dim];
        const auto s = Clock::now();
        auto hits = index->Search(query, 10);
        const double elapsed = Seconds(s, Clock::now()) * 1e3;
        if (!hits.ok()) {
          std::fprintf(stderr, "%s\n", hits.status().ToString().c_str());
          return 1;
        }
        if (q < 0) continue;
        ms.push_back(elapsed);
        std::set<int64_t> top;
        for (const auto& h : *hits) top.insert(h.id);
        got.push_back(std::move(top));
      }
      std::string recall = "-";
      if (factory == "Flat") {
        exact = got;
        recall = "1 (exact)";
      } else if (!exact.empty()) {
        size_t found = 0;
        for (int q = 0; q < nq; ++q)
          for (int64_t id : got[q]) found += exact[q].count(id);
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%.4f", found / (10.0 * nq));
        recall = buf;
      }
      const auto s0 = Clock::now();
      rag::Status saved = index->Save(file);
      const double save_s = Seconds(s0, Clock::now());
      const double file_mib = saved.ok() ? std::filesystem::file_size(file) / 1048576.0 : 0;
      index.reset();
      const auto l0 = Clock::now();
      auto loaded = rag::VectorIndex::Load(file, dim);
      const double load_s = Seconds(l0, Clock::now());
      if (!saved.ok() || !loaded.ok()) {
        std::fprintf(stderr, "save/load: %s %s\n", saved.ToString().c_str(), loaded.status().ToString().c_str());
        return 1;
      }
      double mean = 0;
      for (double v : ms) mean += v;
      mean /= ms.size();
      std::printf("| %zu | %s | %.2f | %.0f | %.3f | %.3f | %.3f | %s | %.2f | %.2f | %.0f |\n", n, factory.c_str(),
                  build_s, rss_delta, Percentile(ms, 0.5), Percentile(ms, 0.99), mean, recall.c_str(), save_s,
                  load_s, file_mib);
      std::fflush(stdout);
    }
  }
  std::filesystem::remove(file);
  return 0;
}
