// Thin RAII helpers over the SQLite C API, private to the retrieval module.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace rag {

// A prepared statement; binds are 1-based like SQLite's.
class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  const Status& status() const { return status_; }
  Statement& Bind(int i, int64_t v);
  Statement& Bind(int i, double v);
  Statement& Bind(int i, std::string_view v);
  Statement& BindNull(int i);
  // Steps once: true when a row is ready, false when done; errors land in status().
  bool Step();
  // Runs to completion (for statements without rows); returns status().
  Status Run();
  void Reset();

  int64_t Int(int col) const;
  double Double(int col) const;
  std::string Text(int col) const;
  bool IsNull(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  Status status_;
};

// Executes one or more statements without results.
Status ExecSql(sqlite3* db, std::string_view sql);

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(sqlite3* db);
  ~Transaction();
  const Status& status() const { return status_; }
  Status Commit();

 private:
  sqlite3* db_;
  Status status_;
  bool done_ = false;
};

// Maps a SQLite error to a Status (disk full -> ResourceExhausted, corrupt -> DataLoss).
Status SqliteError(sqlite3* db, int rc, std::string_view what);

}  // namespace rag
