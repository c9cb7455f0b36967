#include "engine/dist/tp_process.h"

#include <atomic>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <thread>

#include "common/logging.h"
#include "engine/kv_cache_type.h"

namespace rag {

std::string TpSettings(const ModelConfig& config, const CudaBackendOptions& options,
                       const TensorParallelOptions& tp, const std::string& extra) {
  std::ostringstream s;
  s << "world=" << tp.world << "\n"
    << "model=" << config.vocab_size << " vocab, " << config.hidden_size << " dim, "
    << config.intermediate_size << " inter, " << config.num_hidden_layers << " layers, "
    << config.num_attention_heads << "/" << config.num_key_value_heads << " heads of "
    << config.head_dim << ", rope " << config.rope_theta << ", eps " << config.rms_norm_eps
    << ", tied " << config.tie_word_embeddings << "\n"
    << "block_size=" << options.block_size << "\n"
    << "max_seq_len=" << options.max_seq_len << "\n"
    << "max_batch_tokens=" << options.max_batch_tokens << "\n"
    << "max_batch_seqs=" << options.max_batch_seqs << "\n"
    << "max_logit_rows=" << options.max_logit_rows << "\n"
    << "num_blocks=" << options.num_blocks << "\n"
    << "cuda_graphs=" << options.cuda_graphs << "\n"
    << "gemv_max_rows=" << options.gemv_max_rows << "\n"
    << "fused_gemv=" << options.fused_gemv << "\n"
    << "tp_bf16_prefill_sums=" << options.tp_bf16_prefill_sums << "\n"
    << "fp8_gemm=" << options.fp8_gemm << "\n"
    << "fp8_unit_scale_max_rows=" << options.fp8_unit_scale_max_rows << "\n"
    << "kv_cache=" << KvCacheTypeName(options.kv_cache) << "\n"
    << "peer_allreduce_max_bytes=" << tp.peer_allreduce_max_bytes << "\n"
    << extra;
  return s.str();
}

namespace {

TensorParallelOptions RankOptions(const TpProcessOptions& process, TensorParallelOptions tp) {
  tp.world = process.world;
  tp.process_rank = process.rank;
  tp.devices = {process.device >= 0 ? process.device : process.rank};
  return tp;
}

// Runs `load` while another thread calls `lost` (which paces itself); a non-empty answer ends
// the process (status 1): a rank gone during the load leaves this one in a collective that no
// abort reaches (the communicators are not built yet), and a process that can never serve the
// model is better ended than hung.
StatusOr<std::unique_ptr<TensorParallelBackend>> WhileLoading(
    const std::function<std::string()>& lost,
    const std::function<StatusOr<std::unique_ptr<TensorParallelBackend>>()>& load) {
  std::atomic<bool> loaded{false};
  std::thread guard([&] {
    while (!loaded) {
      const std::string why = lost();
      if (!why.empty() && !loaded) {
        RAG_LOG(ERROR) << why;
        std::_Exit(1);
      }
    }
  });
  StatusOr<std::unique_ptr<TensorParallelBackend>> built = load();
  loaded = true;
  guard.join();
  return built;
}

}  // namespace

StatusOr<std::unique_ptr<TensorParallelBackend>> HostTpProcessGroup(
    const TpProcessOptions& process, const std::string& settings, TensorParallelOptions tp,
    const TpBackendFactory& factory) {
  if (process.rank != 0) return InvalidArgument("HostTpProcessGroup is rank 0's");
  RAG_ASSIGN_OR_RETURN(std::string id, TpGroup::NewUniqueId());
  RAG_LOG(INFO) << "tensor parallel: waiting for " << process.world - 1
                << " follower process(es) at " << process.rendezvous.host << ":"
                << process.rendezvous.port;
  RAG_ASSIGN_OR_RETURN(
      std::unique_ptr<TpRendezvous> followers,
      TpRendezvous::Host(process.rendezvous, process.world, settings, id, process.timeout));
  tp = RankOptions(process, std::move(tp));
  tp.unique_id = followers->unique_id();
  const TpRendezvous* watched = followers.get();
  tp.followers = std::move(followers);
  // A follower failing its load leaves this rank waiting in a collective of the load: when one
  // leaves before this rank has loaded, the process ends (as a follower's does, below).
  return WhileLoading(
      [watched]() -> std::string {
        const int lost = watched->LostFollower(std::chrono::milliseconds(200));
        return lost < 0 ? ""
                        : "tensor parallel rank 0: rank " + std::to_string(lost) +
                              " left while the group was loading; exiting";
      },
      [&] { return factory(tp); });
}

Status FollowTpProcessGroup(const TpProcessOptions& process, const std::string& settings,
                            TensorParallelOptions tp, const TpBackendFactory& factory) {
  if (process.rank < 1 || process.rank >= process.world) {
    return InvalidArgument("a tensor-parallel follower is rank 1 to " +
                           std::to_string(process.world - 1) + ", not " +
                           std::to_string(process.rank));
  }
  RAG_ASSIGN_OR_RETURN(std::unique_ptr<TpRendezvous> rank0,
                       TpRendezvous::Join(process.rendezvous, process.rank, process.world, settings,
                                          process.timeout));
  tp = RankOptions(process, std::move(tp));
  tp.unique_id = rank0->unique_id();
  // Rank 0 failing its own load leaves this one waiting in a collective of the load (NCCL's join,
  // a registration): when its connection closes before this rank has loaded, the process ends.
  const TpRendezvous* watched = rank0.get();
  RAG_ASSIGN_OR_RETURN(std::unique_ptr<TensorParallelBackend> backend,
                       WhileLoading(
                           [watched, &process]() -> std::string {
                             std::this_thread::sleep_for(std::chrono::milliseconds(200));
                             return watched->Rank0Closed()
                                        ? "tensor parallel rank " + std::to_string(process.rank) +
                                              ": rank 0 left while the group was loading; exiting"
                                        : "";
                           },
                           [&] { return factory(tp); }));
  RAG_LOG(INFO) << "tensor parallel rank " << process.rank << " of " << process.world
                << ": following rank 0";
  return backend->Follow(*rank0);
}

}  // namespace rag
