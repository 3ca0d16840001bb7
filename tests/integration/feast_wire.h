// Feast's gRPC wire format without Feast's .proto (feature_server_test,
// feature_server_security_test): requests encoded by hand, responses decoded
// schema-less, raw unary calls through gRPC's generic stub.
#ifndef QUIVER_TESTS_INTEGRATION_FEAST_WIRE_H_
#define QUIVER_TESTS_INTEGRATION_FEAST_WIRE_H_

#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

namespace quiver::testing {

// gRPC without the server's .proto: requests are encoded here by hand from
// Feast's published field numbers (ServingService.proto and Value.proto at
// v0.66.0: GetOnlineFeaturesRequest{features=2: FeatureList{val=1},
// entities=3: map<string, RepeatedValue{val=1}>}, Value{string_val=2,
// int64_val=4, double_val=5}), sent with gRPC's generic stub, and responses
// decoded with protobuf's schema-less UnknownFieldSet.
inline std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
inline std::string Bytes(int field, const std::string& payload) {
  return Varint(static_cast<uint64_t>(field) << 3 | 2) + Varint(payload.size()) + payload;
}
inline std::string VarintField(int field, uint64_t v) {
  return Varint(static_cast<uint64_t>(field) << 3) + Varint(v);
}

// One unary call to `method` with raw request bytes; the raw response.
// `token` (if any) goes in the `authorization` metadata as a bearer token.
inline std::string RawCall(const std::string& address, const std::string& method, const std::string& request,
                    grpc::Status* status, const std::string& token = "",
                    std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials(),
                    int deadline_s = 10) {
  grpc::GenericStub stub(grpc::CreateChannel(address, credentials));
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1), response;
  grpc::ClientContext ctx;
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(deadline_s));
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request_buffer, &response,
                 [&](grpc::Status s) { done.set_value(std::move(s)); });
  *status = done.get_future().get();
  std::vector<grpc::Slice> slices;
  std::string out;
  if (status->ok() && response.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

inline constexpr char kGetOnlineFeatures[] = "/feast.serving.ServingService/GetOnlineFeatures";

// GetOnlineFeaturesRequest{features=2: FeatureList{val=1: [ref]},
// entities=3: {"user_id": RepeatedValue{val=1: [Value{string_val=2: id}]}}}.
inline std::string OneRowRequest(const std::string& ref, const std::string& id) {
  return Bytes(2, Bytes(1, ref)) + Bytes(3, Bytes(1, "user_id") + Bytes(2, Bytes(1, Bytes(2, id))));
}

using Fields = std::shared_ptr<google::protobuf::UnknownFieldSet>;
inline std::vector<std::string> Messages(const Fields& set, int number) {
  std::vector<std::string> out;
  for (int i = 0; i < set->field_count(); ++i) {
    if (set->field(i).number() == number) out.push_back(set->field(i).length_delimited());
  }
  return out;
}
inline Fields Parse(const std::string& bytes) {
  auto set = std::make_shared<google::protobuf::UnknownFieldSet>();
  EXPECT_TRUE(set->ParseFromString(bytes));
  return set;
}
// A packed repeated enum: its varints.
inline std::vector<uint64_t> Packed(const std::string& bytes) {
  std::vector<uint64_t> out;
  uint64_t v = 0;
  int shift = 0;
  for (unsigned char c : bytes) {
    v |= static_cast<uint64_t>(c & 0x7f) << shift;
    shift += 7;
    if (!(c & 0x80)) {
      out.push_back(v);
      v = 0;
      shift = 0;
    }
  }
  return out;
}

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_INTEGRATION_FEAST_WIRE_H_
