// quiver::expr: tokenizer, parser and type checker (expression.h).
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "program.h"

namespace quiver::expr {
namespace {

enum class Tok { kEnd, kNumber, kString, kName, kOp, kLParen, kRParen, kComma, kDot };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;
  size_t pos = 0;  // 0-based
};

// Bounds on the recursion of the parser and the evaluator, which both
// recurse once per level: a few KiB of '(' overflowed the stack (found by
// tests/fuzz, expression target). Nesting counts parentheses, call
// arguments and prefix '-' / not; depth counts the compiled tree, whose
// chains of binary operators ("a + b + c ...") nest one node per operator.
constexpr int kMaxNesting = 100;
constexpr int kMaxTreeDepth = 500;

absl::Status ErrorAt(size_t pos, const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat("at position ", pos + 1, ": ", message));
}

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view text) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    Token t;
    t.pos = i;
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1])))) {
      size_t j = i;
      while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.')) ++j;
      if (j < text.size() && (text[j] == 'e' || text[j] == 'E')) {
        size_t k = j + 1;
        if (k < text.size() && (text[k] == '+' || text[k] == '-')) ++k;
        if (k < text.size() && std::isdigit(static_cast<unsigned char>(text[k]))) {
          j = k;
          while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
        }
      }
      t.kind = Tok::kNumber;
      t.text = std::string(text.substr(i, j - i));
      i = j;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < text.size() && (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '_')) ++j;
      t.kind = Tok::kName;
      t.text = std::string(text.substr(i, j - i));
      i = j;
    } else if (c == '\'') {
      std::string s;
      size_t j = i + 1;
      for (;;) {
        if (j >= text.size()) return ErrorAt(i, "unterminated string literal");
        if (text[j] == '\'') {
          if (j + 1 < text.size() && text[j + 1] == '\'') {
            s.push_back('\'');
            j += 2;
            continue;
          }
          break;
        }
        s.push_back(text[j++]);
      }
      t.kind = Tok::kString;
      t.text = std::move(s);
      i = j + 1;
    } else if (c == '(' || c == ')' || c == ',' || c == '.') {
      t.kind = c == '(' ? Tok::kLParen : c == ')' ? Tok::kRParen : c == ',' ? Tok::kComma : Tok::kDot;
      t.text = std::string(1, c);
      ++i;
    } else {
      static const char* const kOps[] = {"<=", ">=", "==", "!=", "<>", "+", "-", "*",
                                         "/",  "=",  "<",  ">"};
      bool found = false;
      for (const char* op : kOps) {
        const std::string_view o(op);
        if (text.substr(i, o.size()) == o) {
          t.kind = Tok::kOp;
          t.text = std::string(o);
          i += o.size();
          found = true;
          break;
        }
      }
      if (!found) return ErrorAt(i, absl::StrCat("unexpected character '", std::string(1, c), "'"));
    }
    out.push_back(std::move(t));
  }
  Token end;
  end.pos = text.size();
  out.push_back(end);
  return out;
}

bool IsNumeric(ValueType t) { return t == ValueType::kInt64 || t == ValueType::kDouble; }

const char* ExprTypeName(ValueType t) {
  switch (t) {
    case ValueType::kInt64: return "INT64";
    case ValueType::kDouble: return "DOUBLE";
    case ValueType::kBool: return "BOOL";
    case ValueType::kString: return "STRING";
    case ValueType::kInvalid: return "NULL";
    default: return "?";
  }
}

// INT32 reads as INT64, FLOAT as DOUBLE; nullopt for types expressions
// cannot use.
std::optional<ValueType> ExprTypeOf(ValueType t) {
  switch (t) {
    case ValueType::kInt32:
    case ValueType::kInt64: return ValueType::kInt64;
    case ValueType::kFloat:
    case ValueType::kDouble: return ValueType::kDouble;
    case ValueType::kBool: return ValueType::kBool;
    case ValueType::kString: return ValueType::kString;
    default: return std::nullopt;
  }
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::vector<Input>& inputs, Program* program)
      : tokens_(std::move(tokens)), inputs_(inputs), p_(program) {}

  absl::StatusOr<int> ParseAll() {
    absl::StatusOr<int> root = Or();
    if (!root.ok()) return root;
    if (Peek().kind != Tok::kEnd) return ErrorAt(Peek().pos, absl::StrCat("unexpected '", Peek().text, "'"));
    return root;
  }

 private:
  const Token& Peek() const { return tokens_[next_]; }
  Token Take() { return tokens_[next_ == tokens_.size() - 1 ? next_ : next_++]; }
  bool IsWord(const Token& t, std::string_view word) const {
    return t.kind == Tok::kName && absl::AsciiStrToLower(t.text) == word;
  }

  absl::StatusOr<int> Add(Node n) {
    int depth = 1;
    for (int a : n.args) depth = std::max(depth, depths_[static_cast<size_t>(a)] + 1);
    if (depth > kMaxTreeDepth) {
      return ErrorAt(n.pos, absl::StrCat("expression more than ", kMaxTreeDepth, " operations deep"));
    }
    depths_.push_back(depth);
    p_->nodes.push_back(std::move(n));
    return static_cast<int>(p_->nodes.size() - 1);
  }
  // One level of nesting while alive (see kMaxNesting).
  class Nest {
   public:
    explicit Nest(int* nesting) : nesting_(nesting) { ++*nesting_; }
    ~Nest() { --*nesting_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
    bool too_deep() const { return *nesting_ > kMaxNesting; }

   private:
    int* nesting_;
  };
  absl::Status TooDeep(size_t pos) const {
    return ErrorAt(pos, absl::StrCat("expression nested more than ", kMaxNesting, " levels deep"));
  }
  const Node& At(int i) const { return p_->nodes[static_cast<size_t>(i)]; }
  // A literal null has no type yet (kInvalid): it takes its context's.
  ValueType TypeOf(int i) const { return At(i).type; }

  absl::StatusOr<int> Or() {
    const Nest nest(&nesting_);
    if (nest.too_deep()) return TooDeep(Peek().pos);
    absl::StatusOr<int> left = And();
    while (left.ok() && IsWord(Peek(), "or")) {
      const Token op = Take();
      absl::StatusOr<int> right = And();
      if (!right.ok()) return right;
      left = Logical(Op::kOr, op.pos, *left, *right);
    }
    return left;
  }
  absl::StatusOr<int> And() {
    absl::StatusOr<int> left = Not();
    while (left.ok() && IsWord(Peek(), "and")) {
      const Token op = Take();
      absl::StatusOr<int> right = Not();
      if (!right.ok()) return right;
      left = Logical(Op::kAnd, op.pos, *left, *right);
    }
    return left;
  }
  absl::StatusOr<int> Logical(Op op, size_t pos, int a, int b) {
    for (int x : {a, b}) {
      if (TypeOf(x) != ValueType::kBool && TypeOf(x) != ValueType::kInvalid) {
        return ErrorAt(At(x).pos, absl::StrCat(op == Op::kAnd ? "and" : "or", " needs BOOL operands, got ",
                                               ExprTypeName(TypeOf(x))));
      }
    }
    return Add({.op = op, .type = ValueType::kBool, .pos = pos, .args = {a, b}});
  }
  absl::StatusOr<int> Not() {
    if (IsWord(Peek(), "not")) {
      const Token op = Take();
      const Nest nest(&nesting_);
      if (nest.too_deep()) return TooDeep(op.pos);
      absl::StatusOr<int> inner = Not();
      if (!inner.ok()) return inner;
      if (TypeOf(*inner) != ValueType::kBool && TypeOf(*inner) != ValueType::kInvalid) {
        return ErrorAt(op.pos, absl::StrCat("not needs a BOOL operand, got ", ExprTypeName(TypeOf(*inner))));
      }
      return Add({.op = Op::kNot, .type = ValueType::kBool, .pos = op.pos, .args = {*inner}});
    }
    return Compare();
  }
  absl::StatusOr<int> Compare() {
    absl::StatusOr<int> left = Sum();
    if (!left.ok() || Peek().kind != Tok::kOp) return left;
    static const std::map<std::string, Op> kCmp = {{"=", Op::kEq},  {"==", Op::kEq}, {"!=", Op::kNe},
                                                   {"<>", Op::kNe}, {"<", Op::kLt},  {"<=", Op::kLe},
                                                   {">", Op::kGt},  {">=", Op::kGe}};
    auto it = kCmp.find(Peek().text);
    if (it == kCmp.end()) return left;
    const Token op = Take();
    absl::StatusOr<int> right = Sum();
    if (!right.ok()) return right;
    const ValueType a = TypeOf(*left), b = TypeOf(*right);
    const bool ok = a == ValueType::kInvalid || b == ValueType::kInvalid || a == b ||
                    (IsNumeric(a) && IsNumeric(b));
    if (!ok) {
      return ErrorAt(op.pos, absl::StrCat("cannot compare ", ExprTypeName(a), " with ", ExprTypeName(b)));
    }
    return Add({.op = it->second, .type = ValueType::kBool, .pos = op.pos, .args = {*left, *right}});
  }
  absl::StatusOr<int> Sum() {
    absl::StatusOr<int> left = Product();
    while (left.ok() && Peek().kind == Tok::kOp && (Peek().text == "+" || Peek().text == "-")) {
      const Token op = Take();
      absl::StatusOr<int> right = Product();
      if (!right.ok()) return right;
      left = Arithmetic(op.text == "+" ? Op::kAdd : Op::kSub, op, *left, *right);
    }
    return left;
  }
  absl::StatusOr<int> Product() {
    absl::StatusOr<int> left = Unary();
    while (left.ok() && Peek().kind == Tok::kOp && (Peek().text == "*" || Peek().text == "/")) {
      const Token op = Take();
      absl::StatusOr<int> right = Unary();
      if (!right.ok()) return right;
      left = Arithmetic(op.text == "*" ? Op::kMul : Op::kDiv, op, *left, *right);
    }
    return left;
  }
  absl::StatusOr<int> Arithmetic(Op op, const Token& tok, int a, int b) {
    const ValueType ta = TypeOf(a), tb = TypeOf(b);
    for (ValueType t : {ta, tb}) {
      if (t != ValueType::kInvalid && !IsNumeric(t)) {
        return ErrorAt(tok.pos, absl::StrCat("'", tok.text, "' needs numbers, got ", ExprTypeName(t)));
      }
    }
    ValueType type = ValueType::kInt64;
    if (op == Op::kDiv || ta == ValueType::kDouble || tb == ValueType::kDouble) type = ValueType::kDouble;
    return Add({.op = op, .type = type, .pos = tok.pos, .args = {a, b}});
  }
  absl::StatusOr<int> Unary() {
    if (Peek().kind == Tok::kOp && Peek().text == "-") {
      const Token op = Take();
      const Nest nest(&nesting_);
      if (nest.too_deep()) return TooDeep(op.pos);
      absl::StatusOr<int> inner = Unary();
      if (!inner.ok()) return inner;
      const ValueType t = TypeOf(*inner);
      if (t != ValueType::kInvalid && !IsNumeric(t)) {
        return ErrorAt(op.pos, absl::StrCat("unary '-' needs a number, got ", ExprTypeName(t)));
      }
      return Add({.op = Op::kNeg, .type = t == ValueType::kInvalid ? ValueType::kInt64 : t,
                  .pos = op.pos, .args = {*inner}});
    }
    return Primary();
  }
  absl::StatusOr<int> Primary() {
    const Token t = Take();
    switch (t.kind) {
      case Tok::kNumber: return Number(t);
      case Tok::kString:
        return Add({.op = Op::kLiteral, .type = ValueType::kString, .pos = t.pos,
                    .literal = Value::String(t.text)});
      case Tok::kLParen: {
        absl::StatusOr<int> inner = Or();
        if (!inner.ok()) return inner;
        if (Peek().kind != Tok::kRParen) return ErrorAt(Peek().pos, "expected ')'");
        Take();
        return inner;
      }
      case Tok::kName: return Name(t);
      case Tok::kEnd: return ErrorAt(t.pos, "unexpected end of expression");
      default: return ErrorAt(t.pos, absl::StrCat("unexpected '", t.text, "'"));
    }
  }
  absl::StatusOr<int> Number(const Token& t) {
    const bool is_double = t.text.find_first_of(".eE") != std::string::npos;
    if (!is_double) {
      int64_t v = 0;
      auto [end, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
      if (ec == std::errc() && end == t.text.data() + t.text.size()) {
        return Add({.op = Op::kLiteral, .type = ValueType::kInt64, .pos = t.pos, .literal = Value::Int64(v)});
      }
      if (ec != std::errc::result_out_of_range) return ErrorAt(t.pos, absl::StrCat("bad number '", t.text, "'"));
    }
    double d = 0;
    auto [end, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), d);
    if (ec != std::errc() || end != t.text.data() + t.text.size() || !std::isfinite(d)) {
      return ErrorAt(t.pos, absl::StrCat("bad number '", t.text, "'"));
    }
    return Add({.op = Op::kLiteral, .type = ValueType::kDouble, .pos = t.pos, .literal = Value::Double(d)});
  }
  absl::StatusOr<int> Name(const Token& t) {
    const std::string lower = absl::AsciiStrToLower(t.text);
    if (lower == "true" || lower == "false") {
      return Add({.op = Op::kLiteral, .type = ValueType::kBool, .pos = t.pos,
                  .literal = Value::Bool(lower == "true")});
    }
    if (lower == "null") {
      return Add({.op = Op::kLiteral, .type = ValueType::kInvalid, .pos = t.pos,
                  .literal = Value::Null(ValueType::kInvalid)});
    }
    if (Peek().kind == Tok::kLParen) return Call(t);
    std::string view, name = t.text;
    if (Peek().kind == Tok::kDot) {
      Take();
      const Token field = Take();
      if (field.kind != Tok::kName) return ErrorAt(field.pos, "expected a feature name after '.'");
      view = t.text;
      name = field.text;
    }
    int found = -1;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      const Input& in = inputs_[i];
      const bool match = view.empty() ? in.name == name : (in.view == view && in.name == name);
      if (!match) continue;
      if (found >= 0) {
        return ErrorAt(t.pos, absl::StrCat("'", name, "' is ambiguous (", inputs_[static_cast<size_t>(found)].view,
                                          ".", name, " and ", in.view.empty() ? "a request field" : in.view + "." + name,
                                          "): qualify it as view.feature"));
      }
      found = static_cast<int>(i);
    }
    const std::string shown = view.empty() ? name : absl::StrCat(view, ".", name);
    if (found < 0) return ErrorAt(t.pos, absl::StrCat("unknown name '", shown, "'"));
    const std::optional<ValueType> type = ExprTypeOf(inputs_[static_cast<size_t>(found)].type);
    if (!type.has_value()) {
      return ErrorAt(t.pos, absl::StrCat("'", shown, "' has a type expressions cannot use"));
    }
    return Add({.op = Op::kInput, .type = *type, .pos = t.pos, .input = found});
  }

  // The common type of `args` for if/coalesce/least/greatest: all numeric
  // (DOUBLE if any is), or all the same; nulls take the others'.
  absl::StatusOr<ValueType> Common(const Token& fn, const std::vector<int>& args) {
    ValueType common = ValueType::kInvalid;
    for (int a : args) {
      const ValueType t = TypeOf(a);
      if (t == ValueType::kInvalid) continue;
      if (common == ValueType::kInvalid || common == t) {
        common = t;
      } else if (IsNumeric(common) && IsNumeric(t)) {
        common = ValueType::kDouble;
      } else {
        return ErrorAt(At(a).pos, absl::StrCat(fn.text, ": cannot mix ", ExprTypeName(common), " and ", ExprTypeName(t)));
      }
    }
    return common == ValueType::kInvalid ? ValueType::kInt64 : common;
  }

  absl::StatusOr<int> Call(const Token& fn) {
    Take();  // (
    std::vector<int> args;
    if (Peek().kind != Tok::kRParen) {
      for (;;) {
        absl::StatusOr<int> a = Or();
        if (!a.ok()) return a;
        args.push_back(*a);
        if (Peek().kind == Tok::kComma) {
          Take();
          continue;
        }
        break;
      }
    }
    if (Peek().kind != Tok::kRParen) return ErrorAt(Peek().pos, "expected ',' or ')'");
    Take();
    const std::string name = absl::AsciiStrToLower(fn.text);
    auto count = [&](size_t lo, size_t hi) -> absl::Status {
      if (args.size() < lo || args.size() > hi) {
        return ErrorAt(fn.pos, absl::StrCat(name, " takes ", lo == hi ? absl::StrCat(lo) : absl::StrCat(lo, " to ", hi),
                                            " arguments, got ", args.size()));
      }
      return absl::OkStatus();
    };
    auto numeric_arg = [&](int a) -> absl::Status {
      const ValueType t = TypeOf(a);
      if (t != ValueType::kInvalid && !IsNumeric(t)) {
        return ErrorAt(At(a).pos, absl::StrCat(name, " needs a number, got ", ExprTypeName(t)));
      }
      return absl::OkStatus();
    };
    Node n{.pos = fn.pos, .args = args};
    if (name == "if") {
      if (auto s = count(3, 3); !s.ok()) return s;
      if (TypeOf(args[0]) != ValueType::kBool && TypeOf(args[0]) != ValueType::kInvalid) {
        return ErrorAt(At(args[0]).pos, absl::StrCat("if needs a BOOL condition, got ", ExprTypeName(TypeOf(args[0]))));
      }
      absl::StatusOr<ValueType> t = Common(fn, {args[1], args[2]});
      if (!t.ok()) return t.status();
      n.op = Op::kIf;
      n.type = *t;
    } else if (name == "coalesce" || name == "least" || name == "greatest") {
      if (auto s = count(1, 1000); !s.ok()) return s;
      absl::StatusOr<ValueType> t = Common(fn, args);
      if (!t.ok()) return t.status();
      n.op = name == "coalesce" ? Op::kCoalesce : name == "least" ? Op::kLeast : Op::kGreatest;
      n.type = *t;
    } else if (name == "abs") {
      if (auto s = count(1, 1); !s.ok()) return s;
      if (auto s = numeric_arg(args[0]); !s.ok()) return s;
      n.op = Op::kAbs;
      n.type = TypeOf(args[0]) == ValueType::kDouble ? ValueType::kDouble : ValueType::kInt64;
    } else if (name == "sqrt" || name == "ln" || name == "exp") {
      if (auto s = count(1, 1); !s.ok()) return s;
      if (auto s = numeric_arg(args[0]); !s.ok()) return s;
      n.op = name == "sqrt" ? Op::kSqrt : name == "ln" ? Op::kLn : Op::kExp;
      n.type = ValueType::kDouble;
    } else if (name == "round") {
      if (auto s = count(1, 2); !s.ok()) return s;
      if (auto s = numeric_arg(args[0]); !s.ok()) return s;
      if (args.size() == 2 && TypeOf(args[1]) != ValueType::kInt64 && TypeOf(args[1]) != ValueType::kInvalid) {
        return ErrorAt(At(args[1]).pos, "round's digits must be an INT64");
      }
      n.op = Op::kRound;
      n.type = ValueType::kDouble;
    } else if (name == "length") {
      if (auto s = count(1, 1); !s.ok()) return s;
      if (TypeOf(args[0]) != ValueType::kString && TypeOf(args[0]) != ValueType::kInvalid) {
        return ErrorAt(At(args[0]).pos, absl::StrCat("length needs a STRING, got ", ExprTypeName(TypeOf(args[0]))));
      }
      n.op = Op::kLength;
      n.type = ValueType::kInt64;
    } else if (name == "concat") {
      if (auto s = count(1, 1000); !s.ok()) return s;
      for (int a : args) {
        if (TypeOf(a) == ValueType::kDouble) {
          return ErrorAt(At(a).pos, "concat takes STRING, INT64 and BOOL arguments, not DOUBLE");
        }
      }
      n.op = Op::kConcat;
      n.type = ValueType::kString;
    } else {
      return ErrorAt(fn.pos, absl::StrCat("unknown function '", fn.text, "'"));
    }
    return Add(std::move(n));
  }

  std::vector<Token> tokens_;
  size_t next_ = 0;
  const std::vector<Input>& inputs_;
  Program* p_;
  std::vector<int> depths_;  // tree depth of each node of p_->nodes
  int nesting_ = 0;
};

}  // namespace

absl::StatusOr<Expression> Expression::Compile(std::string_view text, std::vector<Input> inputs) {
  absl::StatusOr<std::vector<Token>> tokens = Tokenize(text);
  if (!tokens.ok()) return tokens.status();
  auto program = std::make_shared<Program>();
  Parser parser(*std::move(tokens), inputs, program.get());
  absl::StatusOr<int> root = parser.ParseAll();
  if (!root.ok()) return root.status();
  program->root = *root;
  program->type = program->nodes[static_cast<size_t>(*root)].type;
  if (program->type == ValueType::kInvalid) program->type = ValueType::kInt64;  // a bare null
  std::vector<bool> used(inputs.size(), false);
  for (const Node& n : program->nodes) {
    if (n.op == Op::kInput) used[static_cast<size_t>(n.input)] = true;
  }
  for (size_t i = 0; i < used.size(); ++i) {
    if (used[i]) program->used.push_back(static_cast<int>(i));
  }
  program->inputs = std::move(inputs);
  return Expression(std::move(program));
}

Expression::~Expression() = default;

ValueType Expression::type() const { return program_->type; }
const std::vector<int>& Expression::used_inputs() const { return program_->used; }

}  // namespace quiver::expr
