// quiver::expr: evaluation of a compiled expression (semantics in
// expression.h: SQL's null rules; null where SQL engines raise at run time).
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "program.h"

namespace quiver::expr {
namespace {

bool IsNull(const Value& v) { return v.is_null(); }

double AsDouble(const Value& v) {
  if (const auto* i = std::get_if<int64_t>(&v.data)) return static_cast<double>(*i);
  return std::get<double>(v.data);
}

// `v` (a non-null INT64, DOUBLE, BOOL or STRING) as `type` (the same, or
// DOUBLE from INT64).
Value Widen(Value v, ValueType type) {
  if (IsNull(v)) return Value::Null(type);
  if (type == ValueType::kDouble && v.type == ValueType::kInt64) return Value::Double(AsDouble(v));
  v.type = type;
  return v;
}

// DuckDB's total order of doubles: NaN equals NaN and is above every number.
int CompareDoubles(double a, double b) {
  const bool na = std::isnan(a), nb = std::isnan(b);
  if (na || nb) return na == nb ? 0 : (na ? 1 : -1);
  return a < b ? -1 : (a > b ? 1 : 0);
}

// Both non-null and of comparable kinds (the type checker made sure).
int Compare(const Value& a, const Value& b) {
  if (a.type == ValueType::kString) return std::get<std::string>(a.data).compare(std::get<std::string>(b.data)) < 0
                                                ? -1
                                                : (std::get<std::string>(a.data) == std::get<std::string>(b.data) ? 0 : 1);
  if (a.type == ValueType::kBool) {
    const bool x = std::get<bool>(a.data), y = std::get<bool>(b.data);
    return x == y ? 0 : (x ? 1 : -1);
  }
  if (a.type == ValueType::kInt64 && b.type == ValueType::kInt64) {
    const int64_t x = std::get<int64_t>(a.data), y = std::get<int64_t>(b.data);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  return CompareDoubles(AsDouble(a), AsDouble(b));
}

// An input as the expression reads it: INT32 as INT64, FLOAT as DOUBLE; a
// value of another type than declared reads as null.
Value ReadInput(const Value& v, ValueType declared, ValueType as) {
  if (IsNull(v) || v.type != declared) return Value::Null(as);
  if (std::holds_alternative<int64_t>(v.data) && as == ValueType::kInt64) return Value::Int64(std::get<int64_t>(v.data));
  if (std::holds_alternative<double>(v.data) && as == ValueType::kDouble) return Value::Double(std::get<double>(v.data));
  if (std::holds_alternative<bool>(v.data) && as == ValueType::kBool) return v;
  if (std::holds_alternative<std::string>(v.data) && as == ValueType::kString) {
    return Value::String(std::get<std::string>(v.data));
  }
  return Value::Null(as);
}

class Evaluator {
 public:
  Evaluator(const Program& p, std::span<const Value> values) : p_(p), values_(values) {}

  Value Eval(int index) {
    const Node& n = p_.nodes[static_cast<size_t>(index)];
    switch (n.op) {
      case Op::kLiteral: return n.type == ValueType::kInvalid ? Value::Null(ValueType::kInvalid) : n.literal;
      case Op::kInput: {
        const size_t i = static_cast<size_t>(n.input);
        if (i >= values_.size()) return Value::Null(n.type);
        return ReadInput(values_[i], p_.inputs[i].type, n.type);
      }
      case Op::kAdd: case Op::kSub: case Op::kMul: return Arithmetic(n);
      case Op::kDiv: {
        const Value a = Arg(n, 0), b = Arg(n, 1);
        if (IsNull(a) || IsNull(b)) return Value::Null(ValueType::kDouble);
        const double y = AsDouble(b);
        if (y == 0) return Value::Null(ValueType::kDouble);
        return Value::Double(AsDouble(a) / y);
      }
      case Op::kNeg: {
        const Value a = Arg(n, 0);
        if (IsNull(a)) return Value::Null(n.type);
        if (n.type == ValueType::kInt64) {
          const int64_t x = std::get<int64_t>(a.data);
          if (x == std::numeric_limits<int64_t>::min()) return Value::Null(n.type);
          return Value::Int64(-x);
        }
        return Value::Double(-AsDouble(a));
      }
      case Op::kEq: case Op::kNe: case Op::kLt: case Op::kLe: case Op::kGt: case Op::kGe: {
        const Value a = Arg(n, 0), b = Arg(n, 1);
        if (IsNull(a) || IsNull(b)) return Value::Null(ValueType::kBool);
        const int c = Compare(a, b);
        switch (n.op) {
          case Op::kEq: return Value::Bool(c == 0);
          case Op::kNe: return Value::Bool(c != 0);
          case Op::kLt: return Value::Bool(c < 0);
          case Op::kLe: return Value::Bool(c <= 0);
          case Op::kGt: return Value::Bool(c > 0);
          default: return Value::Bool(c >= 0);
        }
      }
      case Op::kAnd: case Op::kOr: {
        const Value a = Arg(n, 0), b = Arg(n, 1);
        const bool dominant = n.op == Op::kOr;  // true decides or, false decides and
        for (const Value* v : {&a, &b}) {
          if (!IsNull(*v) && std::get<bool>(v->data) == dominant) return Value::Bool(dominant);
        }
        if (IsNull(a) || IsNull(b)) return Value::Null(ValueType::kBool);
        return Value::Bool(!dominant);
      }
      case Op::kNot: {
        const Value a = Arg(n, 0);
        if (IsNull(a)) return Value::Null(ValueType::kBool);
        return Value::Bool(!std::get<bool>(a.data));
      }
      case Op::kIf: {
        const Value c = Arg(n, 0);
        const bool take = !IsNull(c) && std::get<bool>(c.data);
        return Widen(Arg(n, take ? 1 : 2), n.type);
      }
      case Op::kCoalesce:
        for (size_t i = 0; i < n.args.size(); ++i) {
          Value v = Arg(n, i);
          if (!IsNull(v)) return Widen(std::move(v), n.type);
        }
        return Value::Null(n.type);
      case Op::kLeast: case Op::kGreatest: {
        Value best = Value::Null(n.type);
        for (size_t i = 0; i < n.args.size(); ++i) {
          Value v = Widen(Arg(n, i), n.type);
          if (IsNull(v)) continue;
          if (IsNull(best)) {
            best = std::move(v);
            continue;
          }
          const int c = Compare(v, best);
          if (n.op == Op::kLeast ? c < 0 : c > 0) best = std::move(v);
        }
        return best;
      }
      case Op::kAbs: {
        const Value a = Arg(n, 0);
        if (IsNull(a)) return Value::Null(n.type);
        if (n.type == ValueType::kInt64) {
          const int64_t x = std::get<int64_t>(a.data);
          if (x == std::numeric_limits<int64_t>::min()) return Value::Null(n.type);
          return Value::Int64(x < 0 ? -x : x);
        }
        return Value::Double(std::fabs(AsDouble(a)));
      }
      case Op::kSqrt: case Op::kLn: case Op::kExp: {
        const Value a = Arg(n, 0);
        if (IsNull(a)) return Value::Null(ValueType::kDouble);
        const double x = AsDouble(a);
        if (n.op == Op::kSqrt) return x < 0 ? Value::Null(ValueType::kDouble) : Value::Double(std::sqrt(x));
        if (n.op == Op::kLn) return x <= 0 ? Value::Null(ValueType::kDouble) : Value::Double(std::log(x));
        return Value::Double(std::exp(x));
      }
      case Op::kRound: {
        const Value a = Arg(n, 0);
        if (IsNull(a)) return Value::Null(ValueType::kDouble);
        const double x = AsDouble(a);
        int64_t digits = 0;
        if (n.args.size() == 2) {
          const Value d = Arg(n, 1);
          if (IsNull(d)) return Value::Null(ValueType::kDouble);
          digits = std::get<int64_t>(d.data);
          if (digits < -308 || digits > 308) return Value::Null(ValueType::kDouble);
        }
        if (digits == 0 || !std::isfinite(x)) return Value::Double(std::round(x));
        const double scale = std::pow(10.0, static_cast<double>(digits));
        const double r = std::round(x * scale) / scale;
        return Value::Double(std::isfinite(r) ? r : x);
      }
      case Op::kLength: {
        const Value a = Arg(n, 0);
        if (IsNull(a)) return Value::Null(ValueType::kInt64);
        int64_t count = 0;
        for (unsigned char c : std::get<std::string>(a.data)) count += (c & 0xC0) != 0x80;
        return Value::Int64(count);
      }
      case Op::kConcat: {
        std::string out;
        for (size_t i = 0; i < n.args.size(); ++i) {
          const Value v = Arg(n, i);
          if (IsNull(v)) continue;
          if (const auto* s = std::get_if<std::string>(&v.data)) {
            out += *s;
          } else if (const auto* b = std::get_if<bool>(&v.data)) {
            out += *b ? "true" : "false";
          } else {
            out += std::to_string(std::get<int64_t>(v.data));
          }
        }
        return Value::String(std::move(out));
      }
    }
    return Value::Null(n.type);
  }

 private:
  Value Arg(const Node& n, size_t i) { return Eval(n.args[i]); }

  Value Arithmetic(const Node& n) {
    const Value a = Arg(n, 0), b = Arg(n, 1);
    if (IsNull(a) || IsNull(b)) return Value::Null(n.type);
    if (n.type == ValueType::kInt64) {
      const int64_t x = std::get<int64_t>(a.data), y = std::get<int64_t>(b.data);
      int64_t r = 0;
      const bool overflow = n.op == Op::kAdd   ? __builtin_add_overflow(x, y, &r)
                            : n.op == Op::kSub ? __builtin_sub_overflow(x, y, &r)
                                               : __builtin_mul_overflow(x, y, &r);
      return overflow ? Value::Null(ValueType::kInt64) : Value::Int64(r);
    }
    const double x = AsDouble(a), y = AsDouble(b);
    return Value::Double(n.op == Op::kAdd ? x + y : n.op == Op::kSub ? x - y : x * y);
  }

  const Program& p_;
  std::span<const Value> values_;
};

}  // namespace

Value Expression::Evaluate(std::span<const Value> values) const {
  Evaluator e(*program_, values);
  return Widen(e.Eval(program_->root), program_->type);
}

}  // namespace quiver::expr
