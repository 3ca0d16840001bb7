#include "quiver/expr/on_demand.h"

#include <set>

#include "absl/strings/str_cat.h"

namespace quiver::expr {
namespace {

absl::Status Invalid(const std::string& view, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("on-demand feature view '", view, "': ", why));
}

bool IsOutputType(ValueType t) {
  return t == ValueType::kInt64 || t == ValueType::kDouble || t == ValueType::kBool ||
         t == ValueType::kString;
}

}  // namespace

absl::StatusOr<OnDemandView> OnDemandView::Compile(const quiver::v1::Registry& registry,
                                                   const quiver::v1::OnDemandFeatureView& view) {
  OnDemandView out;
  out.name_ = view.name();
  if (view.sources().empty() && view.request_schema().empty()) {
    return Invalid(view.name(), "has no source and no request field");
  }
  std::set<std::string> seen_sources;
  for (const std::string& source : view.sources()) {
    if (!seen_sources.insert(source).second) return Invalid(view.name(), absl::StrCat("source '", source, "' listed twice"));
    const quiver::v1::FeatureView* fv = nullptr;
    for (const auto& v : registry.feature_views()) {
      if (v.name() == source) fv = &v;
    }
    if (fv == nullptr) return Invalid(view.name(), absl::StrCat("unknown source feature view '", source, "'"));
    for (const auto& f : fv->features()) {
      out.inputs_.push_back({fv->name(), f.name(), static_cast<ValueType>(f.type())});
    }
  }
  std::set<std::string> fields;
  for (const auto& field : view.request_schema()) {
    const ValueType t = static_cast<ValueType>(field.type());
    if (field.name().empty()) return Invalid(view.name(), "a request field has no name");
    if (!fields.insert(field.name()).second) {
      return Invalid(view.name(), absl::StrCat("request field '", field.name(), "' defined twice"));
    }
    if (!IsOutputType(t) && t != ValueType::kInt32 && t != ValueType::kFloat) {
      return Invalid(view.name(), absl::StrCat("request field '", field.name(),
                                               "' must be INT32, INT64, FLOAT, DOUBLE, BOOL or STRING"));
    }
    out.inputs_.push_back({"", field.name(), t});
  }
  if (view.features().empty()) return Invalid(view.name(), "has no feature");
  std::set<std::string> names;
  for (const auto& f : view.features()) {
    const ValueType declared = static_cast<ValueType>(f.type());
    if (f.name().empty()) return Invalid(view.name(), "a feature has no name");
    if (!names.insert(f.name()).second) return Invalid(view.name(), absl::StrCat("feature '", f.name(), "' defined twice"));
    if (!IsOutputType(declared)) {
      return Invalid(view.name(), absl::StrCat("feature '", f.name(), "' must be INT64, DOUBLE, BOOL or STRING"));
    }
    absl::StatusOr<Expression> e = Expression::Compile(f.expression(), out.inputs_);
    if (!e.ok()) return Invalid(view.name(), absl::StrCat("feature '", f.name(), "': ", e.status().message()));
    const bool widens = declared == ValueType::kDouble && e->type() == ValueType::kInt64;
    if (e->type() != declared && !widens) {
      return Invalid(view.name(), absl::StrCat("feature '", f.name(), "' is declared ", TypeName(declared),
                                               " but its expression is ", TypeName(e->type())));
    }
    out.names_.push_back(f.name());
    out.types_.push_back(declared);
    out.expressions_.push_back(*std::move(e));
  }
  return out;
}

Value OnDemandView::Evaluate(size_t feature, std::span<const Value> values) const {
  Value v = expressions_[feature].Evaluate(values);
  const ValueType declared = types_[feature];
  if (v.is_null()) return Value::Null(declared);
  if (declared == ValueType::kDouble && v.type == ValueType::kInt64) {
    return Value::Double(static_cast<double>(std::get<int64_t>(v.data)));
  }
  return v;
}

}  // namespace quiver::expr
