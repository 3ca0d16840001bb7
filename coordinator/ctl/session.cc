#include "ctl/session.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace quiver::ctl {

constexpr int kNodeMessageBytes = 64 << 20;

void Print(std::FILE* f, const std::string& text) { std::fwrite(text.data(), 1, text.size(), f); }

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return buf.str();
}

bool Transient(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded;
}

absl::Status FromGrpc(const grpc::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

namespace {
security::ChannelFactory& ChannelsSlot() {
  static security::ChannelFactory channels;
  return channels;
}
}  // namespace

absl::Status UseSecurity(const CommandLine& cl) {
  auto security = security::MakeClientSecurity({cl.tls_ca, cl.tls_cert, cl.tls_key}, cl.token_file);
  if (!security.ok()) return security.status();
  auto channels = security::ChannelFactory::Create(*security);
  if (!channels.ok()) return absl::InvalidArgumentError(channels.status().message());
  ChannelsSlot() = *std::move(channels);
  return absl::OkStatus();
}

const security::ChannelFactory& Channels() { return ChannelsSlot(); }

Coordinator::Coordinator(const CommandLine& cl)
    : address_(cl.coordinator),
      deadline_(cl.deadline_ms),
      stub_(quiver::v1::CoordinatorService::NewStub(Channels().Make(cl.coordinator))) {}

std::unique_ptr<quiver::v1::NodeService::Stub> NodeStub(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kNodeMessageBytes);
  args.SetMaxSendMessageSize(kNodeMessageBytes);
  return quiver::v1::NodeService::NewStub(Channels().Make(address, args));
}

absl::Status ForEachStoredRow(quiver::v1::NodeService::Stub& stub, const std::string& what,
                              const std::string& view, uint32_t begin, uint32_t end,
                              uint64_t epoch,
                              absl::FunctionRef<void(const quiver::v1::StoredRow&)> visit) {
  constexpr uint64_t kPageBytes = 4u << 20;
  std::string after;
  for (;;) {
    quiver::v1::ScanPartitionsRequest req;
    req.set_view(view);
    req.set_partition_begin(begin);
    req.set_partition_end(end);
    req.set_after(after);
    req.set_max_bytes(kPageBytes);
    req.set_epoch(epoch);
    quiver::v1::ScanPartitionsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (auto s = FromGrpc(stub.ScanPartitions(&ctx, req, &resp), "scanning " + what); !s.ok()) {
      return s;
    }
    for (const auto& row : resp.rows()) visit(row);
    if (resp.done() || resp.rows_size() == 0) return absl::OkStatus();
    after = resp.rows(resp.rows_size() - 1).key();
  }
}

absl::StatusOr<std::unique_ptr<client::Client>> ConnectClient(const CommandLine& cl) {
  client::ClientOptions opts;
  opts.coordinator_address = cl.coordinator;
  opts.default_deadline = std::chrono::milliseconds(cl.deadline_ms);
  opts.security = Channels().security();
  auto client = client::Client::Create(opts);
  if (!client.ok()) {
    return absl::Status(client.status().code(),
                        absl::StrCat("cannot reach coordinator ", cl.coordinator, ": ",
                                     client.status().message()));
  }
  return client;
}

}  // namespace quiver::ctl
