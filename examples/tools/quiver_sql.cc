// quiver-sql: runs SQL statements with DuckDB (in memory) and prints the
// result of the last statement as tab-separated text with a header line.
//
//   quiver-sql [-v NAME=VALUE]... (-f FILE.sql | -c "SQL")
//
// "${NAME}" in the SQL is replaced by VALUE (for paths and time shifts).
// Exit status: 0 on success, 1 with DuckDB's error on stderr, 2 on bad usage.
#include <duckdb.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

namespace {

int Usage() {
  std::fprintf(stderr, "usage: quiver-sql [-v NAME=VALUE]... (-f FILE.sql | -c SQL)\n");
  return 2;
}

std::string Substitute(std::string sql, const std::map<std::string, std::string>& vars) {
  for (const auto& [name, value] : vars) {
    const std::string token = "${" + name + "}";
    for (size_t pos = sql.find(token); pos != std::string::npos;
         pos = sql.find(token, pos + value.size())) {
      sql.replace(pos, token.size(), value);
    }
  }
  return sql;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> vars;
  std::string sql;
  bool have_sql = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "-v" || arg == "-f" || arg == "-c") && i + 1 >= argc) return Usage();
    if (arg == "-v") {
      const std::string kv = argv[++i];
      const auto eq = kv.find('=');
      if (eq == std::string::npos) return Usage();
      vars[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else if (arg == "-f") {
      std::ifstream in(argv[++i]);
      if (!in) {
        std::fprintf(stderr, "quiver-sql: cannot read %s\n", argv[i]);
        return 1;
      }
      std::stringstream ss;
      ss << in.rdbuf();
      sql = ss.str();
      have_sql = true;
    } else if (arg == "-c") {
      sql = argv[++i];
      have_sql = true;
    } else {
      return Usage();
    }
  }
  if (!have_sql) return Usage();
  sql = Substitute(sql, vars);

  duckdb_database db;
  duckdb_connection con;
  if (duckdb_open(nullptr, &db) == DuckDBError || duckdb_connect(db, &con) == DuckDBError) {
    std::fprintf(stderr, "quiver-sql: cannot start DuckDB\n");
    return 1;
  }
  duckdb_extracted_statements stmts;
  const idx_t n = duckdb_extract_statements(con, sql.c_str(), &stmts);
  int rc = 0;
  if (n == 0) {
    std::fprintf(stderr, "quiver-sql: %s\n", duckdb_extract_statements_error(stmts));
    rc = 1;
  }
  for (idx_t s = 0; s < n && rc == 0; ++s) {
    duckdb_prepared_statement prepared;
    duckdb_result result;
    if (duckdb_prepare_extracted_statement(con, stmts, s, &prepared) == DuckDBError) {
      std::fprintf(stderr, "quiver-sql: %s\n", duckdb_prepare_error(prepared));
      duckdb_destroy_prepare(&prepared);
      rc = 1;
      break;
    }
    if (duckdb_execute_prepared(prepared, &result) == DuckDBError) {
      std::fprintf(stderr, "quiver-sql: %s\n", duckdb_result_error(&result));
      rc = 1;
    } else if (s + 1 == n) {
      const idx_t cols = duckdb_column_count(&result);
      for (idx_t c = 0; c < cols; ++c) {
        std::cout << (c ? "\t" : "") << duckdb_column_name(&result, c);
      }
      std::cout << "\n";
      const idx_t rows = duckdb_row_count(&result);
      for (idx_t r = 0; r < rows; ++r) {
        for (idx_t c = 0; c < cols; ++c) {
          char* v = duckdb_value_varchar(&result, c, r);
          std::cout << (c ? "\t" : "") << (v ? v : "NULL");
          duckdb_free(v);
        }
        std::cout << "\n";
      }
    }
    duckdb_destroy_result(&result);
    duckdb_destroy_prepare(&prepared);
  }
  duckdb_destroy_extracted(&stmts);
  duckdb_disconnect(&con);
  duckdb_close(&db);
  return rc;
}
