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

Json PassagesToJson(const std::vector<Passage>& passages) {
  Json list = Json::array();
  for (const Passage& p : passages) list.push_back(PassageToJson(p));
  return list;
}

Json CitationToJson(const VerifiedCitation& c) {
  Json support = Json::array();
  for (const SpanSupport& s : c.support) {
    // Out-of-range sources cannot occur (AttributeAnswer only cites passages it was given).
    support.push_back({{"source", s.source},
                       {"passage_start", s.passage_start},
                       {"passage_end", s.passage_end},
                       {"score", s.score}});
  }
  return Json{{"start", c.start},     {"end", c.end},
              {"text", c.text},       {"sources", c.sources},
              {"support", std::move(support)}, {"verified_tag", c.from_tag}};
}

Json QueryResultToJson(const QueryResult& r) {
  Json citations = Json::array();
  for (const auto& c : r.answer.citations) {
    Json j = CitationToJson(c);
    // Document and page of each supporting passage, so a client needs no lookup.
    for (Json& s : j["support"]) {
      const int i = s["source"].get<int>();
      if (i >= 0 && i < static_cast<int>(r.passages.size())) {
        s["document_id"] = r.passages[i].chunk.document_id;
        s["page"] = r.passages[i].chunk.page;
      }
    }
    citations.push_back(std::move(j));
  }
  Json unsupported = Json::array();
  for (const auto& u : r.answer.unsupported) {
    unsupported.push_back({{"start", u.start}, {"end", u.end}, {"text", u.text}});
  }
  Json passages = PassagesToJson(r.passages);
  Json usage = {{"passages", r.passages.size()}, {"citations", r.answer.citations.size()}};
  Json j{{"answer", r.answer.answer},
         {"citations", std::move(citations)},
         {"unsupported", std::move(unsupported)},
         {"passages", std::move(passages)},
         {"mode", r.mode},
         {"timings",
          {{"retrieve_ms", r.retrieve_ms},
           {"answer_ms", r.answer_ms},
           {"total_ms", r.retrieve_ms + r.answer_ms}}}};
  if (!r.model.empty()) {
    j["model"] = r.model;
    usage["prompt_tokens"] = r.prompt_tokens;
    usage["completion_tokens"] = r.completion_tokens;
    j["finish_reason"] = r.finish_reason;
  }
  j["usage"] = std::move(usage);
  return j;
}

Json RetrieveResultToJson(const std::string& question, const std::vector<Passage>& passages) {
  return Json{{"question", question}, {"passages", PassagesToJson(passages)}};
}

}  // namespace rag
