// JSON shapes of the HTTP API and of `rag query --json` / `rag retrieve` (DESIGN.md section 4,
// docs/API.md). One place, so the CLI and the server cannot drift apart.
#pragma once

#include "common/json_util.h"
#include "server/assistant.h"

namespace rag {

Json DocumentToJson(const DocumentRecord& doc);
Json PassageToJson(const Passage& passage);
// The array of PassageToJson of each passage, in order.
Json PassagesToJson(const std::vector<Passage>& passages);
// {"start","end","text","sources","support":[{"source","passage_start","passage_end","score"}],
// "verified_tag"} (QueryResultToJson adds document_id and page to each support entry).
Json CitationToJson(const VerifiedCitation& citation);
// {"answer","citations","unsupported","passages","mode","model"?,"finish_reason"?,"usage","timings"}
Json QueryResultToJson(const QueryResult& result);
// {"question","passages":[{"chunk_id","document_id","title","page","text","score",...}]}
Json RetrieveResultToJson(const std::string& question, const std::vector<Passage>& passages);

}  // namespace rag
