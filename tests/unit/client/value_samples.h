// One valid, non-null value of every Quiver type, for tests of the value and
// packed-value codecs.
#ifndef QUIVER_TESTS_UNIT_CLIENT_VALUE_SAMPLES_H_
#define QUIVER_TESTS_UNIT_CLIENT_VALUE_SAMPLES_H_

#include <limits>
#include <string>
#include <vector>

#include "quiver/keys/value.h"

namespace quiver::testing {

inline std::vector<Value> OneValueOfEveryType() {
  return {
      Value::Int32(-7),
      Value::Int64(std::numeric_limits<int64_t>::min()),
      Value::Float(1.5f),
      Value::Double(-2.25),
      Value::Bool(true),
      Value::String("héllo"),
      Value::Bytes(std::string("\0\1\2", 3)),
      Value::UnixTimestamp(1700000000123456),
      Value{ValueType::kInt32List, std::vector<int64_t>{1, -2, 3}},
      Value{ValueType::kInt64List, std::vector<int64_t>{}},
      Value{ValueType::kFloatList, std::vector<double>{0.5, 1.0}},
      Value{ValueType::kDoubleList, std::vector<double>{3.0}},
      Value{ValueType::kBoolList, std::vector<int64_t>{1, 0}},
      Value{ValueType::kStringList, std::vector<std::string>{"a", "", "bc"}},
      Value{ValueType::kBytesList, std::vector<std::string>{std::string(1, '\0')}},
      Value{ValueType::kUnixTimestampList, std::vector<int64_t>{5, 6}},
  };
}

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_UNIT_CLIENT_VALUE_SAMPLES_H_
