// quiver::expr — the one evaluator of on-demand features (issue 12): the
// same compiled expression computes a derived feature online (in the client,
// after the fetch) and offline (on get-historical's joined rows), so the two
// cannot drift.
//
// Language (an expression is one line of text):
//   literals     12  -3  1.5  2e3  'text' ('' inside is a quote)  true false null
//   names        feature (bare when unique in the scope), view.feature,
//                request_field
//   operators    + - * /   = == != <> < <= > >=   and or not   ( )
//                (precedence, loosest first: or; and; not; comparisons;
//                + -; * /; unary -)
//   functions    if(c, a, b)  coalesce(a, ...)  abs(x)  sqrt(x)  ln(x)  exp(x)
//                round(x) round(x, digits)  least(a, ...)  greatest(a, ...)
//                length(s)  concat(a, ...)
//
// Types: INT64, DOUBLE, BOOL, STRING. Inputs of type INT32 read as INT64,
// FLOAT as DOUBLE; other types (BYTES, timestamps, lists) cannot be used.
// INT64 widens to DOUBLE where the two meet (+ - * comparisons, if,
// coalesce, least, greatest).
//
// Semantics are SQL's (DuckDB's where SQL dialects differ):
//   - null in, null out, for operators and functions, except: `and`/`or`
//     (three-valued: false and null = false, true or null = true); if(c, a,
//     b) takes b when c is null; coalesce (the first non-null); least and
//     greatest (ignore nulls; null only when all are); concat (a null
//     argument adds nothing).
//   - `/` always gives DOUBLE (DuckDB's `/`); x / 0 is null.
//   - Where SQL engines raise an error at run time, the result is null
//     instead, so a lookup never fails on a value: INT64 overflow of + - *
//     and abs, sqrt of a negative, ln of a non-positive number.
//   - round(x) rounds half away from zero to a DOUBLE; round(x, d) to d
//     decimal digits (d an INT64 literal or expression, -308..308).
//   - length counts UTF-8 code points; concat takes STRING, INT64 and BOOL
//     arguments (INT64 as decimal text, BOOL as true / false).
//   - Comparisons: numbers with numbers, strings with strings (byte order),
//     booleans with booleans (false < true).
//
// Thread-safety: a compiled Expression is immutable; Evaluate may run from
// many threads at once.
#ifndef QUIVER_EXPR_EXPRESSION_H_
#define QUIVER_EXPR_EXPRESSION_H_

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver/keys/value.h"

namespace quiver::expr {

// A value an expression may read: a source feature view's feature (found as
// `view.feature`, or as `feature` when no other input has that bare name) or
// a request field (`view` empty: found by its name).
struct Input {
  std::string view;
  std::string name;
  ValueType type = ValueType::kInvalid;
};

class Expression {
 public:
  // Parses and type-checks `text` against `inputs`.
  // Errors: kInvalidArgument "at position P: ..." (P: the 1-based character
  // position in `text`) for a syntax error, an unknown or ambiguous name, an
  // input of a type expressions cannot use, a wrong argument count or type,
  // or a comparison of different kinds. Not retryable.
  static absl::StatusOr<Expression> Compile(std::string_view text, std::vector<Input> inputs);

  // The result type: kInt64, kDouble, kBool or kString.
  ValueType type() const;
  // Indexes into the compile-time `inputs` that the expression reads,
  // ascending, each once (the caller fetches only those).
  const std::vector<int>& used_inputs() const;

  // Evaluates on `values`, one per compile-time input (only used_inputs()
  // are read; a null Value or one of another type than declared reads as
  // null). Returns a Value of type(), possibly null. Never fails.
  Value Evaluate(std::span<const Value> values) const;

  Expression(const Expression&) = default;
  Expression& operator=(const Expression&) = default;
  Expression(Expression&&) noexcept = default;
  Expression& operator=(Expression&&) noexcept = default;
  ~Expression();

  struct Program;  // the compiled tree (expression.cc)

 private:
  explicit Expression(std::shared_ptr<const Program> program) : program_(std::move(program)) {}
  std::shared_ptr<const Program> program_;
};

}  // namespace quiver::expr

#endif  // QUIVER_EXPR_EXPRESSION_H_
