// quiver::expr: compile errors with their positions, the documented null and
// error rules, and 10,000 random rows evaluated both by the evaluator and by
// DuckDB running the same expressions written in SQL (with the rules where
// DuckDB differs, x / 0 and ln of a non-positive number, spelled out as
// CASE), value for value.
#include "quiver/expr/expression.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "duckdb.h"

namespace quiver::expr {
namespace {

const std::vector<Input> kInputs = {
    {"stats", "a", ValueType::kInt64},   {"stats", "b", ValueType::kDouble},
    {"stats", "s", ValueType::kString},  {"other", "c", ValueType::kInt32},
    {"other", "a", ValueType::kInt64},   {"", "income", ValueType::kFloat},
    {"stats", "flag", ValueType::kBool}, {"stats", "blob", ValueType::kBytes},
};

Value Eval(const std::string& text, std::vector<Value> values) {
  auto e = Expression::Compile(text, kInputs);
  EXPECT_TRUE(e.ok()) << text << ": " << e.status();
  if (!e.ok()) return Value::Null(ValueType::kInvalid);
  return e->Evaluate(values);
}

// stats.a, b, s, other.c, other.a, income, flag, blob.
std::vector<Value> Row(Value a, Value b, Value s, Value c = Value::Null(ValueType::kInt32)) {
  return {a, b, s, c, Value::Null(ValueType::kInt64), Value::Float(2.5f), Value::Bool(true),
          Value::Null(ValueType::kBytes)};
}

TEST(ExpressionTest, CompileErrorsNameThePosition) {
  struct Case {
    std::string text, message;
  };
  const std::vector<Case> cases = {
      {"a + 1", "at position 1: 'a' is ambiguous"},
      {"stats.a + nope", "at position 11: unknown name 'nope'"},
      {"stats.a + ", "at position 11: unexpected end"},
      {"s + 1", "at position 3: '+' needs numbers, got STRING"},
      {"s = 1", "at position 3: cannot compare STRING with INT64"},
      {"abs(s)", "at position 5: abs needs a number"},
      {"if(b, 1, 2)", "at position 4: if needs a BOOL condition"},
      {"if(flag, 1, 'x')", "cannot mix INT64 and STRING"},
      {"sqrt()", "at position 1: sqrt takes 1 arguments, got 0"},
      {"frobnicate(b)", "unknown function 'frobnicate'"},
      {"'open", "at position 1: unterminated string literal"},
      {"b # 2", "at position 3: unexpected character '#'"},
      {"(b + 1", "expected ')'"},
      {"blob", "'blob' has a type expressions cannot use"},
      {"concat(s, b)", "not DOUBLE"},
      {"flag and b", "and needs BOOL operands, got DOUBLE"},
  };
  for (const Case& c : cases) {
    auto e = Expression::Compile(c.text, kInputs);
    ASSERT_FALSE(e.ok()) << c.text;
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(e.status().message().find(c.message), std::string::npos)
        << c.text << " -> " << e.status().message();
  }
}

TEST(ExpressionTest, TypesAndInputsUsed) {
  auto e = Expression::Compile("stats.a + c", kInputs);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->type(), ValueType::kInt64);
  EXPECT_EQ(e->used_inputs(), (std::vector<int>{0, 3}));
  EXPECT_EQ(Expression::Compile("stats.a / 2", kInputs)->type(), ValueType::kDouble);
  EXPECT_EQ(Expression::Compile("stats.a + income", kInputs)->type(), ValueType::kDouble);
  EXPECT_EQ(Expression::Compile("b > 1 and not flag", kInputs)->type(), ValueType::kBool);
  EXPECT_EQ(Expression::Compile("concat(s, stats.a, flag)", kInputs)->type(), ValueType::kString);
  EXPECT_EQ(Expression::Compile("coalesce(null, stats.a, b)", kInputs)->type(), ValueType::kDouble);
}

TEST(ExpressionTest, SqlNullRulesAndNullInsteadOfErrors) {
  const Value kNullI = Value::Null(ValueType::kInt64), kNullD = Value::Null(ValueType::kDouble),
              kNullS = Value::Null(ValueType::kString);
  const auto row = Row(Value::Int64(7), Value::Double(0.0), Value::String("héllo"), Value::Int32(0));
  EXPECT_EQ(Eval("stats.a + c", row), Value::Int64(7));
  EXPECT_EQ(Eval("stats.a / c", row), Value::Null(ValueType::kDouble));  // x / 0
  EXPECT_EQ(Eval("stats.a / 2", row), Value::Double(3.5));
  EXPECT_EQ(Eval("-7 / 2", row), Value::Double(-3.5));
  EXPECT_EQ(Eval("ln(b)", row), kNullD);
  EXPECT_EQ(Eval("sqrt(b - 1)", row), kNullD);
  EXPECT_EQ(Eval("length(s)", row), Value::Int64(5));  // code points
  EXPECT_EQ(Eval("9223372036854775807 + stats.a", row), kNullI);  // overflow
  EXPECT_EQ(Eval("abs(-9223372036854775807 - 1)", row), kNullI);
  EXPECT_EQ(Eval("round(2.5)", row), Value::Double(3));
  EXPECT_EQ(Eval("round(-2.5)", row), Value::Double(-3));
  EXPECT_EQ(Eval("income * 2", row), Value::Double(5));  // FLOAT request field
  // Three-valued logic, if on a null condition, coalesce, least, concat.
  const auto nulls = Row(kNullI, kNullD, kNullS);
  EXPECT_EQ(Eval("stats.a + 1", nulls), kNullI);
  EXPECT_EQ(Eval("stats.a > 1 and false", nulls), Value::Bool(false));
  EXPECT_EQ(Eval("stats.a > 1 or true", nulls), Value::Bool(true));
  EXPECT_EQ(Eval("stats.a > 1 and true", nulls), Value::Null(ValueType::kBool));
  EXPECT_EQ(Eval("not (stats.a > 1)", nulls), Value::Null(ValueType::kBool));
  EXPECT_EQ(Eval("if(stats.a > 1, 'big', 'small')", nulls), Value::String("small"));
  EXPECT_EQ(Eval("coalesce(s, 'none')", nulls), Value::String("none"));
  EXPECT_EQ(Eval("least(stats.a, 3, 2)", nulls), Value::Int64(2));
  EXPECT_EQ(Eval("greatest(stats.a, b)", nulls), kNullD);
  EXPECT_EQ(Eval("concat('x', s, 'y')", nulls), Value::String("xy"));
  EXPECT_EQ(Eval("null", nulls), kNullI);
  // A value of another type than its input declares reads as null.
  EXPECT_EQ(Eval("stats.a + 1", Row(Value::String("7"), kNullD, kNullS)), kNullI);
}

// DuckDB's value of row r, column c as a Value of `type` (null when NULL).
Value DuckValue(duckdb_result* res, idx_t c, idx_t r, ValueType type) {
  if (duckdb_value_is_null(res, c, r)) return Value::Null(type);
  switch (type) {
    case ValueType::kInt64: return Value::Int64(duckdb_value_int64(res, c, r));
    case ValueType::kDouble: return Value::Double(duckdb_value_double(res, c, r));
    case ValueType::kBool: return Value::Bool(duckdb_value_boolean(res, c, r));
    default: {
      char* text = duckdb_value_varchar(res, c, r);
      Value v = Value::String(text == nullptr ? "" : text);
      duckdb_free(text);
      return v;
    }
  }
}

TEST(ExpressionTest, TenThousandRandomRowsEqualDuckDb) {
  // Our expression, then the same in DuckDB's SQL over columns a, b, s, c.
  struct Pair {
    std::string ours, sql;
  };
  const std::vector<Pair> pairs = {
      {"stats.a + b * 2", "a + b * 2"},
      {"stats.a - c * 3", "a - c * 3"},
      {"stats.a / c", "CASE WHEN c = 0 THEN NULL ELSE a / c END"},
      {"b / (stats.a - 5)", "CASE WHEN a - 5 = 0 THEN NULL ELSE b / (a - 5) END"},
      {"if(stats.a > 0 and s <> '', length(s), -1)",
       "CASE WHEN a > 0 AND s <> '' THEN length(s) ELSE -1 END"},
      {"coalesce(s, 'none')", "coalesce(s, 'none')"},
      {"concat(s, '-', stats.a)", "concat(s, '-', a)"},
      {"round(b, 2)", "round(b, 2)"},
      {"least(stats.a, c, 5)", "least(a, c, 5)"},
      {"greatest(b, stats.a)", "greatest(b, a)"},
      {"abs(stats.a) + sqrt(abs(b))", "abs(a) + sqrt(abs(b))"},
      {"ln(b)", "CASE WHEN b > 0 THEN ln(b) END"},
      {"exp(b / 100)", "exp(b / 100)"},
      {"not (stats.a >= c) or s < 'm'", "NOT (a >= c) OR s < 'm'"},
      {"b > 0 and stats.a <= c", "b > 0 AND a <= c"},
      {"-stats.a * 2 <> c", "-a * 2 <> c"},
  };
  std::vector<Expression> compiled;
  std::string select = "SELECT a, b, s, c";
  for (const Pair& p : pairs) {
    auto e = Expression::Compile(p.ours, kInputs);
    ASSERT_TRUE(e.ok()) << p.ours << ": " << e.status();
    compiled.push_back(*e);
    select += ", " + p.sql;
  }
  // Random rows: nulls (1 in 8), zeros, negatives, long strings.
  const std::string rows =
      "FROM (SELECT"
      " CASE WHEN hash(i, 1) % 8 = 0 THEN NULL ELSE (hash(i, 2) % 2001)::BIGINT - 1000 END AS a,"
      " CASE WHEN hash(i, 3) % 8 = 0 THEN NULL WHEN hash(i, 4) % 10 = 0 THEN 0.0"
      "  ELSE ((hash(i, 5) % 2000001)::BIGINT - 1000000) / 997.0 END AS b,"
      " CASE WHEN hash(i, 6) % 8 = 0 THEN NULL WHEN hash(i, 7) % 10 = 0 THEN ''"
      "  ELSE repeat(chr(97 + (hash(i, 8) % 26)::INTEGER), (hash(i, 9) % 300)::INTEGER) END AS s,"
      " CASE WHEN hash(i, 10) % 8 = 0 THEN NULL ELSE ((hash(i, 11) % 21)::INTEGER - 10) END AS c"
      " FROM range(10000) t(i))";
  duckdb_database db;
  duckdb_connection con;
  ASSERT_NE(duckdb_open(nullptr, &db), DuckDBError);
  ASSERT_NE(duckdb_connect(db, &con), DuckDBError);
  duckdb_result res;
  const std::string sql = select + " " + rows;
  ASSERT_NE(duckdb_query(con, sql.c_str(), &res), DuckDBError) << duckdb_result_error(&res);
  const idx_t n = duckdb_row_count(&res);
  ASSERT_EQ(n, 10000u);
  int mismatches = 0, nulls = 0;
  for (idx_t r = 0; r < n; ++r) {
    std::vector<Value> values = {
        DuckValue(&res, 0, r, ValueType::kInt64), DuckValue(&res, 1, r, ValueType::kDouble),
        DuckValue(&res, 2, r, ValueType::kString), Value::Null(ValueType::kInt32),
        Value::Null(ValueType::kInt64), Value::Null(ValueType::kFloat), Value::Null(ValueType::kBool),
        Value::Null(ValueType::kBytes)};
    if (!duckdb_value_is_null(&res, 3, r)) values[3] = Value::Int32(duckdb_value_int32(&res, 3, r));
    for (size_t p = 0; p < pairs.size(); ++p) {
      const Value got = compiled[p].Evaluate(values);
      const Value want = DuckValue(&res, 4 + p, r, compiled[p].type());
      nulls += want.is_null();
      bool same = got == want;
      if (!same && !got.is_null() && !want.is_null() && got.type == ValueType::kDouble) {
        const double x = std::get<double>(got.data), y = std::get<double>(want.data);
        same = x == y || std::fabs(x - y) <= 1e-12 * std::max(std::fabs(x), std::fabs(y));
      }
      if (!same && ++mismatches <= 10) {
        ADD_FAILURE() << pairs[p].ours << " row " << r << ": ours "
                      << (got.is_null() ? "NULL" : "value") << ", DuckDB "
                      << (want.is_null() ? "NULL" : "value");
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GT(nulls, 1000);  // the null paths ran
  duckdb_destroy_result(&res);
  duckdb_disconnect(&con);
  duckdb_close(&db);
}

}  // namespace
}  // namespace quiver::expr
