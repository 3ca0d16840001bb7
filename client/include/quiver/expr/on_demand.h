// On-demand feature views (Feast's ODFVs, with quiver::expr expressions
// instead of Python UDFs): compiled once from the registry, evaluated by the
// same code online (the client, after the fetch) and offline
// (get-historical), so that the two cannot drift.
//
// Thread-safety: a compiled view is immutable; Evaluate may run from many
// threads at once.
#ifndef QUIVER_EXPR_ON_DEMAND_H_
#define QUIVER_EXPR_ON_DEMAND_H_

#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver.pb.h"
#include "quiver/expr/expression.h"
#include "quiver/keys/value.h"

namespace quiver::expr {

class OnDemandView {
 public:
  // Compiles every feature of `view` against its inputs: the features of its
  // source feature views (each view's schema, in `view.sources` order; an
  // expression names one as `feature` when unique, else `view.feature`),
  // then its request fields (by name). A feature's expression must have its
  // declared type, or be INT64 where DOUBLE is declared (widened).
  // Errors: kInvalidArgument "on-demand feature view 'V': ..." naming the
  // unknown source, the bad type, or "feature 'F': at position P: ..." for
  // an expression that does not compile (not retryable).
  static absl::StatusOr<OnDemandView> Compile(const quiver::v1::Registry& registry,
                                             const quiver::v1::OnDemandFeatureView& view);

  const std::string& name() const { return name_; }
  // The inputs, in the order Evaluate takes their values.
  const std::vector<Input>& inputs() const { return inputs_; }
  // Feature names and declared types, schema order.
  const std::vector<std::string>& feature_names() const { return names_; }
  const std::vector<ValueType>& feature_types() const { return types_; }

  // The inputs feature `feature` reads (indexes into inputs(), ascending).
  const std::vector<int>& used_inputs(size_t feature) const {
    return expressions_[feature].used_inputs();
  }

  // Feature `feature` (schema index) of one row, from one value per input
  // (null where a source row was not found or is past its TTL, or a request
  // field is missing). A Value of the declared type, possibly null. Never
  // fails.
  Value Evaluate(size_t feature, std::span<const Value> values) const;

 private:
  OnDemandView() = default;
  std::string name_;
  std::vector<Input> inputs_;
  std::vector<std::string> names_;
  std::vector<ValueType> types_;
  std::vector<Expression> expressions_;
};

}  // namespace quiver::expr

#endif  // QUIVER_EXPR_ON_DEMAND_H_
