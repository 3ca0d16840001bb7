// Fuzz target: the on-demand feature expression language
// (client/include/quiver/expr/expression.h): Compile, and Evaluate when it
// compiles, over several rows of input values (typical, extreme, null, and
// values of another type than declared).
//
// Properties: no crash, no sanitizer report (signed overflow, NaN casts...);
// a refusal is kInvalidArgument "at position P: ..." with P within the text
// (+1 for the end); the result type is one of the four expression types;
// Evaluate returns a value of exactly type(), well-formed (CheckValue), the
// same on a second call; used_inputs() is ascending, unique and in range.
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "fuzz_util.h"
#include "quiver/expr/expression.h"

namespace quiver::fuzz {
namespace {

using expr::Input;

const std::vector<Input>& Inputs() {
  static const auto* inputs = new std::vector<Input>{
      {"v", "a", ValueType::kInt64},   {"v", "b", ValueType::kDouble},
      {"v", "s", ValueType::kString},  {"v", "flag", ValueType::kBool},
      {"w", "a", ValueType::kInt32},   {"w", "f", ValueType::kFloat},
      {"w", "raw", ValueType::kBytes}, {"w", "ts", ValueType::kUnixTimestamp},
      {"", "boost", ValueType::kDouble}, {"", "tag", ValueType::kString},
      {"", "n", ValueType::kInt64}};
  return *inputs;
}

std::vector<std::vector<Value>> Rows() {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  std::vector<std::vector<Value>> rows;
  rows.push_back({Value::Int64(3), Value::Double(2.5), Value::String("héllo"), Value::Bool(true),
                  Value::Int32(-7), Value::Float(0.25f), Value::Bytes("x"), Value::UnixTimestamp(1),
                  Value::Double(1.5), Value::String("t"), Value::Int64(2)});
  rows.push_back({Value::Int64(kMin), Value::Double(kNaN), Value::String(""), Value::Bool(false),
                  Value::Int32(std::numeric_limits<int32_t>::min()), Value::Float(-kInf),
                  Value::Bytes(""), Value::UnixTimestamp(kMin), Value::Double(-0.0),
                  Value::String(std::string("\0\xff", 2)), Value::Int64(kMax)});
  rows.push_back({Value::Int64(kMax), Value::Double(kInf), Value::String("'"), Value::Bool(true),
                  Value::Int32(std::numeric_limits<int32_t>::max()), Value::Float(3e38f),
                  Value::Bytes("\x80"), Value::UnixTimestamp(kMax), Value::Double(1e308),
                  Value::String("\xc3"), Value::Int64(-1)});
  std::vector<Value> nulls;
  for (const Input& in : Inputs()) nulls.push_back(Value::Null(in.type));
  rows.push_back(nulls);
  // Values of the wrong type read as null; a short row leaves inputs missing.
  rows.push_back({Value::String("3"), Value::Int64(1), Value::Double(0), Value::Int64(1)});
  return rows;
}

bool IsExprType(ValueType t) {
  return t == ValueType::kInt64 || t == ValueType::kDouble || t == ValueType::kBool ||
         t == ValueType::kString;
}

}  // namespace
}  // namespace quiver::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quiver;
  using namespace quiver::fuzz;
  static const std::vector<std::vector<Value>> rows = Rows();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto compiled = expr::Expression::Compile(text, Inputs());
  FUZZ_LOG("Compile: %s\n", compiled.status().ToString().c_str());
  if (!compiled.ok()) {
    FUZZ_CHECK(compiled.status().code() == absl::StatusCode::kInvalidArgument, "%s",
               compiled.status().ToString().c_str());
    const std::string message(compiled.status().message());
    const std::string at = "at position ";
    FUZZ_CHECK(message.compare(0, at.size(), at) == 0, "error without a position: %s", message.c_str());
    const std::string rest = message.substr(at.size());
    const size_t colon = rest.find(':');
    size_t pos = 0;
    FUZZ_CHECK(colon != std::string::npos && absl::SimpleAtoi(rest.substr(0, colon), &pos) &&
                   pos >= 1 && pos <= size + 1,
               "bad position in: %s (text of %zu bytes)", message.c_str(), size);
    return 0;
  }
  const expr::Expression& e = *compiled;
  FUZZ_CHECK(IsExprType(e.type()), "result type %d", static_cast<int>(e.type()));
  const std::vector<int>& used = e.used_inputs();
  for (size_t i = 0; i < used.size(); ++i) {
    FUZZ_CHECK(used[i] >= 0 && static_cast<size_t>(used[i]) < Inputs().size(), "used input %d", used[i]);
    FUZZ_CHECK(i == 0 || used[i - 1] < used[i], "used inputs not ascending");
  }
  for (const auto& row : rows) {
    const Value v = e.Evaluate(row);
    FUZZ_CHECK(v.type == e.type(), "evaluated to type %d, declared %d", static_cast<int>(v.type),
               static_cast<int>(e.type()));
    const absl::Status s = CheckValue(v);
    FUZZ_CHECK(s.ok(), "ill-formed result: %s", s.ToString().c_str());
    FUZZ_CHECK(SameValue(v, e.Evaluate(row)), "Evaluate is not deterministic");
  }
  return 0;
}
