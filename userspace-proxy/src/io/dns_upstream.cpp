#include "dns_upstream.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <random>
#include <unordered_map>

#include "dns_message.h"

namespace shunt::proxy {

namespace asio = boost::asio;
using asio::ip::udp;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxInFlight = 60000;
constexpr size_t kMaxMessage = 65535;

}  // namespace

size_t dns_question_end(std::span<const uint8_t> message) {
  size_t at = kDnsHeaderSize;
  if (message.size() < at || ((message[4] << 8) | message[5]) == 0) return 0;
  // A query's name is written out in full: labels up to the root.
  while (at < message.size() && message[at] != 0) {
    if ((message[at] & 0xC0) != 0) return 0;
    at += 1 + message[at];
  }
  at += 1 + 4;  // the root, type and class
  return at <= message.size() ? at : 0;
}

struct DnsUpstreams::Channel {
  explicit Channel(const asio::any_io_executor& executor) : socket(executor) {}

  struct Pending {
    std::span<const uint8_t> question;  // the query's own, to compare
    std::vector<uint8_t> answer;
    int error = 0;
    bool done = false;
    asio::steady_timer* wake = nullptr;
  };

  udp::socket socket;
  std::unordered_map<uint16_t, Pending*> pending;
  bool closed = false;

  void finish(Pending& p, int error) {
    p.done = true;
    p.error = error;
    p.wake->cancel();
  }

  // Reads answers for as long as the channel lives; each wakes its query.
  static asio::awaitable<void> read(std::shared_ptr<Channel> self) {
    std::vector<uint8_t> buffer(kMaxMessage);
    while (!self->closed) {
      auto [ec, n] = co_await self->socket.async_receive(asio::buffer(buffer), kNoThrow);
      if (self->closed || ec == asio::error::operation_aborted) co_return;
      if (ec) {
        // The resolver's port is closed (an ICMP error): every query to it
        // learns it now rather than at its timeout.
        if (ec == asio::error::connection_refused) {
          for (auto& [id, p] : self->pending) self->finish(*p, ECONNREFUSED);
          self->pending.clear();
        }
        continue;
      }
      const std::span<const uint8_t> answer(buffer.data(), n);
      uint16_t id = 0;
      if (!dns_read_id(answer, id)) continue;
      const auto it = self->pending.find(id);
      if (it == self->pending.end()) continue;  // late, or forged
      Pending& p = *it->second;
      // An answer to another question under this ID is not this one's:
      // the question count and the question itself must be the query's.
      if (!p.question.empty() && (answer.size() < p.question.size() || answer[4] != p.question[4] ||
                                  answer[5] != p.question[5] ||
                                  !std::equal(p.question.begin() + kDnsHeaderSize, p.question.end(),
                                              answer.begin() + kDnsHeaderSize)))
        continue;
      p.answer.assign(answer.begin(), answer.end());
      self->pending.erase(it);
      self->finish(p, 0);
    }
  }
};

DnsUpstreams::DnsUpstreams(asio::any_io_executor executor, uint32_t mark,
                           std::chrono::milliseconds timeout)
    : executor_(std::move(executor)), mark_(mark), timeout_(timeout) {}

DnsUpstreams::~DnsUpstreams() {
  for (auto& [resolver, channel] : channels_) {
    channel->closed = true;
    boost::system::error_code ignored;
    channel->socket.close(ignored);
  }
}

Result<std::shared_ptr<DnsUpstreams::Channel>> DnsUpstreams::channel_for(
    const udp::endpoint& resolver) {
  if (auto it = channels_.find(resolver); it != channels_.end()) return it->second;
  if (channels_.size() >= kMaxResolvers) return Error{ENOSPC, "too many resolvers"};
  auto channel = std::make_shared<Channel>(executor_);
  boost::system::error_code ec;
  channel->socket.open(resolver.protocol(), ec);
  if (!ec && mark_ != 0 &&
      setsockopt(channel->socket.native_handle(), SOL_SOCKET, SO_MARK, &mark_, sizeof(mark_)) != 0)
    ec.assign(errno, boost::system::system_category());
  if (!ec) channel->socket.connect(resolver, ec);
  if (!ec) channel->socket.non_blocking(true, ec);
  if (ec) return Error{ec.value(), ec.message()};
  channels_.emplace(resolver, channel);
  asio::co_spawn(executor_, Channel::read(channel), asio::detached);
  return channel;
}

asio::awaitable<Result<std::vector<uint8_t>>> DnsUpstreams::ask(const udp::endpoint& resolver,
                                                                std::span<const uint8_t> query) {
  uint16_t client_id = 0;
  if (!dns_read_id(query, client_id)) co_return Error{EINVAL, "not a DNS message"};
  auto found = channel_for(resolver);
  if (!found) co_return found.error();
  std::shared_ptr<Channel> channel = *found;
  if (channel->pending.size() >= kMaxInFlight) co_return Error{EBUSY, "too many queries in flight"};
  thread_local std::mt19937 random{std::random_device{}()};
  uint16_t id = 0;
  do {
    id = static_cast<uint16_t>(random());
  } while (channel->pending.contains(id));
  std::vector<uint8_t> sent(query.begin(), query.end());
  dns_write_id(sent, id);
  asio::steady_timer wake(executor_, timeout_);
  Channel::Pending pending;
  pending.question = std::span<const uint8_t>(sent).first(dns_question_end(sent));
  pending.wake = &wake;
  boost::system::error_code ec;
  channel->socket.send(asio::buffer(sent), 0, ec);
  // An ICMP error of an earlier query, reported now: this one may still go.
  if (ec == asio::error::connection_refused) channel->socket.send(asio::buffer(sent), 0, ec);
  if (ec) co_return Error{ec.value(), ec.message()};
  channel->pending.emplace(id, &pending);
  co_await wake.async_wait(kNoThrow);
  if (!pending.done) {
    channel->pending.erase(id);
    co_return Error{ETIMEDOUT, "no answer in time"};
  }
  if (pending.error != 0) co_return Error{pending.error, "the resolver's port is closed"};
  dns_write_id(pending.answer, client_id);
  co_return std::move(pending.answer);
}

}  // namespace shunt::proxy
