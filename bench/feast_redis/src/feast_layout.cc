#include "quiver/bench/feast_redis/feast_layout.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "feast_types.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace quiver::bench::feast {
namespace {

constexpr uint32_t kFeastString = 2;  // feast.types.ValueType.STRING
constexpr uint32_t kFeastInt64 = 4;   // feast.types.ValueType.INT64

void AppendU32(uint32_t v, std::string* out) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out->append(b, 4);
}

uint32_t Rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

template <typename List, typename T>
void FillList(const std::vector<T>& in, List* list) {
  list->mutable_val()->Reserve(static_cast<int>(in.size()));
  for (const T& x : in) list->add_val(x);
}

}  // namespace

uint32_t Murmur3_32(std::string_view data, uint32_t seed) {
  constexpr uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  const size_t n = data.size();
  const size_t blocks = n / 4;
  uint32_t h = seed;
  for (size_t i = 0; i < blocks; ++i) {
    uint32_t k = static_cast<uint32_t>(p[4 * i]) | static_cast<uint32_t>(p[4 * i + 1]) << 8 |
                 static_cast<uint32_t>(p[4 * i + 2]) << 16 |
                 static_cast<uint32_t>(p[4 * i + 3]) << 24;
    k *= c1;
    k = Rotl(k, 15);
    k *= c2;
    h ^= k;
    h = Rotl(h, 13);
    h = h * 5 + 0xe6546b64;
  }
  const uint8_t* tail = p + blocks * 4;
  uint32_t k = 0;
  switch (n & 3) {
    case 3:
      k ^= static_cast<uint32_t>(tail[2]) << 16;
      [[fallthrough]];
    case 2:
      k ^= static_cast<uint32_t>(tail[1]) << 8;
      [[fallthrough]];
    case 1:
      k ^= tail[0];
      k *= c1;
      k = Rotl(k, 15);
      k *= c2;
      h ^= k;
  }
  h ^= static_cast<uint32_t>(n);
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

std::string FeatureField(std::string_view view, std::string_view feature) {
  std::string out;
  AppendU32(Murmur3_32(absl::StrCat(std::string(view), ":", std::string(feature))), &out);
  return out;
}

std::string TimestampField(std::string_view view) {
  return absl::StrCat("_ts:", std::string(view));
}

void AppendEntityKeyV3(std::string_view join_key, int64_t value, std::string* out) {
  AppendU32(1, out);
  AppendU32(kFeastString, out);
  AppendU32(static_cast<uint32_t>(join_key.size()), out);
  out->append(join_key);
  AppendU32(kFeastInt64, out);
  AppendU32(8, out);
  const uint64_t u = static_cast<uint64_t>(value);
  AppendU32(static_cast<uint32_t>(u), out);
  AppendU32(static_cast<uint32_t>(u >> 32), out);
}

std::string RedisKey(std::string_view project, std::string_view join_key, int64_t value) {
  std::string out;
  AppendEntityKeyV3(join_key, value, &out);
  out.append(project);
  return out;
}

absl::Status AppendValueProto(const Value& v, std::string* out) {
  if (auto st = CheckValue(v); !st.ok()) return st;
  ::feast::types::Value proto;
  if (!v.is_null()) {
    switch (v.type) {
      case ValueType::kInt32:
        proto.set_int32_val(static_cast<int32_t>(std::get<int64_t>(v.data)));
        break;
      case ValueType::kInt64:
        proto.set_int64_val(std::get<int64_t>(v.data));
        break;
      case ValueType::kUnixTimestamp:
        proto.set_unix_timestamp_val(std::get<int64_t>(v.data) / 1000000);
        break;
      case ValueType::kFloat:
        proto.set_float_val(static_cast<float>(std::get<double>(v.data)));
        break;
      case ValueType::kDouble:
        proto.set_double_val(std::get<double>(v.data));
        break;
      case ValueType::kBool:
        proto.set_bool_val(std::get<bool>(v.data));
        break;
      case ValueType::kString:
        proto.set_string_val(std::get<std::string>(v.data));
        break;
      case ValueType::kBytes:
        proto.set_bytes_val(std::get<std::string>(v.data));
        break;
      case ValueType::kInt32List: {
        auto* list = proto.mutable_int32_list_val();
        for (int64_t x : std::get<std::vector<int64_t>>(v.data))
          list->add_val(static_cast<int32_t>(x));
        break;
      }
      case ValueType::kInt64List:
        FillList(std::get<std::vector<int64_t>>(v.data), proto.mutable_int64_list_val());
        break;
      case ValueType::kUnixTimestampList: {
        auto* list = proto.mutable_unix_timestamp_list_val();
        for (int64_t x : std::get<std::vector<int64_t>>(v.data)) list->add_val(x / 1000000);
        break;
      }
      case ValueType::kFloatList: {
        auto* list = proto.mutable_float_list_val();
        for (double x : std::get<std::vector<double>>(v.data)) list->add_val(static_cast<float>(x));
        break;
      }
      case ValueType::kDoubleList:
        FillList(std::get<std::vector<double>>(v.data), proto.mutable_double_list_val());
        break;
      case ValueType::kBoolList: {
        auto* list = proto.mutable_bool_list_val();
        for (int64_t x : std::get<std::vector<int64_t>>(v.data)) list->add_val(x != 0);
        break;
      }
      case ValueType::kStringList:
        FillList(std::get<std::vector<std::string>>(v.data), proto.mutable_string_list_val());
        break;
      case ValueType::kBytesList:
        FillList(std::get<std::vector<std::string>>(v.data), proto.mutable_bytes_list_val());
        break;
      default:
        return absl::InvalidArgumentError("feast value: invalid type");
    }
  }
  if (!proto.AppendToString(out)) return absl::InternalError("feast value: serialization failed");
  return absl::OkStatus();
}

void AppendTimestampProto(int64_t seconds, std::string* out) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(seconds);
  ts.AppendToString(out);
}

}  // namespace quiver::bench::feast
