#include "server/api_json.h"

namespace rag {

Json DocumentToJson(const DocumentRecord& d) {
  Json j = {{"id", d.id},           {"title", d.title},       {"filename", d.filename},
            {"collection", d.collection}, {"status", d.status}, {"format", d.format},
            {"pages", d.pages},     {"chunks", d.chunks},     {"bytes", d.bytes},
            {"content_hash", d.content_hash}, {"created_at", d.created_at},
            {"updated_at", d.updated_at}};
  if (!d.error.empty()) j["error"] = d.error;
  if (!d.source_path.empty()) j["source_path"] = d.source_path;
  return j;
}

Json PassageToJson(const Passage& p) {
  const ChunkRecord& c = p.chunk;
  return Json{{"index", p.index},       {"chunk_id", c.id},       {"document_id", c.document_id},
              {"title", c.title},       {"filename", c.filename}, {"collection", c.collection},
              {"page", c.page},         {"section", c.section},   {"start", c.start},
              {"end", c.end},           {"text", c.text},         {"score", p.score}};
}

Json QueryResultToJson(const QueryResult& r) {
  Json citations = Json::array();
  for (const auto& c : r.answer.citations) {
    citations.push_back({{"start", c.start}, {"end", c.end}, {"text", c.text}, {"sources", c.sources}});
  }
  Json passages = Json::array();
  for (const auto& p : r.passages) passages.push_back(PassageToJson(p));
  return Json{{"answer", r.answer.answer},
              {"citations", std::move(citations)},
              {"passages", std::move(passages)},
              {"mode", r.mode},
              {"usage", {{"passages", r.passages.size()}, {"citations", r.answer.citations.size()}}},
              {"timings",
               {{"retrieve_ms", r.retrieve_ms},
                {"answer_ms", r.answer_ms},
                {"total_ms", r.retrieve_ms + r.answer_ms}}}};
}

Json RetrieveResultToJson(const std::string& question, const std::vector<Passage>& passages) {
  Json list = Json::array();
  for (const auto& p : passages) list.push_back(PassageToJson(p));
  return Json{{"question", question}, {"passages", std::move(list)}};
}

}  // namespace rag
