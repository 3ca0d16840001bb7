// quiver::expr's compiled form (private to client/src/expr): a tree of
// nodes in one vector, children before parents, each with its static type.
#ifndef QUIVER_CLIENT_SRC_EXPR_PROGRAM_H_
#define QUIVER_CLIENT_SRC_EXPR_PROGRAM_H_

#include <cstddef>
#include <vector>

#include "quiver/expr/expression.h"
#include "quiver/keys/value.h"

namespace quiver::expr {

enum class Op {
  kLiteral, kInput,
  kAdd, kSub, kMul, kDiv, kNeg,
  kEq, kNe, kLt, kLe, kGt, kGe,
  kAnd, kOr, kNot,
  kIf, kCoalesce, kLeast, kGreatest, kAbs, kSqrt, kLn, kExp, kRound, kLength, kConcat,
};

struct Node {
  Op op = Op::kLiteral;
  // kInt64, kDouble, kBool, kString; kInvalid only for a literal null (it
  // takes the type its parent needs).
  ValueType type = ValueType::kInvalid;
  size_t pos = 0;         // 0-based position in the text, for errors
  std::vector<int> args{};  // child node indexes
  Value literal{};          // kLiteral
  int input = -1;         // kInput: index into Program::inputs
};

struct Expression::Program {
  std::vector<Node> nodes;
  int root = -1;
  ValueType type = ValueType::kInvalid;
  std::vector<Input> inputs;
  std::vector<int> used;
};

using Program = Expression::Program;

}  // namespace quiver::expr

#endif  // QUIVER_CLIENT_SRC_EXPR_PROGRAM_H_
