#include "retrieval/sqlite_util.h"

#include <cerrno>
#include <cstring>

namespace rag {

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  // SQLite says SQLITE_FULL only for ENOSPC; a quota or the file size limit (EDQUOT, EFBIG)
  // come as SQLITE_IOERR_WRITE, often with no errno left to tell (sqlite3_system_errno is 0
  // after a failed transaction has rolled back). To the user all are a full disk.
  if ((rc & 0xff) == SQLITE_IOERR && db != nullptr) {
    const int err = sqlite3_system_errno(db);
    if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
      return ResourceExhausted("disk full: " + msg + " (" + std::strerror(err) + ")");
    }
    if (sqlite3_extended_errcode(db) == SQLITE_IOERR_WRITE && err == 0) {
      return ResourceExhausted("disk full: " + msg +
                               " (a write failed: the disk, a quota or the file size limit is full)");
    }
  }
  switch (rc & 0xff) {
    case SQLITE_FULL: return ResourceExhausted("disk full: " + msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return DataLoss("database is corrupt: " + msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Unavailable("database is busy: " + msg);
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM: return FailedPrecondition(msg);
    default: return Internal(msg);
  }
}

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
  const int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) status_ = SqliteError(db, rc, "prepare");
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::Bind(int i, int64_t v) {
  if (stmt_) sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
Statement& Statement::Bind(int i, double v) {
  if (stmt_) sqlite3_bind_double(stmt_, i, v);
  return *this;
}
Statement& Statement::Bind(int i, std::string_view v) {
  if (stmt_) sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindNull(int i) {
  if (stmt_) sqlite3_bind_null(stmt_, i);
  return *this;
}

bool Statement::Step() {
  if (!status_.ok()) return false;
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) status_ = SqliteError(db_, rc, "step");
  return false;
}

Status Statement::Run() {
  while (Step()) {
  }
  return status_;
}

void Statement::Reset() {
  if (!stmt_) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::Int(int col) const { return sqlite3_column_int64(stmt_, col); }
double Statement::Double(int col) const { return sqlite3_column_double(stmt_, col); }
bool Statement::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
std::string Statement::Text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  if (!p) return "";
  return std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, col));
}

Status ExecSql(sqlite3* db, std::string_view sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, std::string(sql).c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    // err is sqlite3_errmsg's text, which SqliteError appends itself.
    Status st = SqliteError(db, rc, "exec");
    sqlite3_free(err);
    return st;
  }
  return Status::Ok();
}

Transaction::Transaction(sqlite3* db) : db_(db) { status_ = ExecSql(db, "BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
  if (!done_ && status_.ok()) (void)ExecSql(db_, "ROLLBACK");
}

Status Transaction::Commit() {
  RAG_RETURN_IF_ERROR(status_);
  Status st = ExecSql(db_, "COMMIT");
  if (st.ok()) done_ = true;
  return st;
}

}  // namespace rag
