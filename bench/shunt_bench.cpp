// shunt-bench: the load generator and the server of scripts/bench.sh.
// Blocking sockets and one thread per connection: simple enough to trust,
// and far below the cost of any proxy it measures.
//
//   shunt-bench server  --echo-port 9000 --sink-port 9001 --hold-port 9002
//   shunt-bench bulk    --host H --port 9001 --streams 4 --seconds 5 [--proxy URL]
//   shunt-bench rr      --host H --port 9000 --size 64 --rate 2000 --seconds 5 [--pacing spin]
//   shunt-bench connect --host H --port 9000 --seconds 5 --threads 2 [--proxy URL]
//   shunt-bench idle    --host H --port 9002 --count 10000 --ready FILE [--proxy URL]
//
// --proxy socks5://127.0.0.1:1080 or connect://127.0.0.1:3128 goes through
// an explicit proxy; without it the client connects to H directly (and a
// transparent proxy, if any, takes the connection). Results are JSON lines.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_net.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace bench;

// ---- server ---------------------------------------------------------------

int listen_on(uint16_t port) {
  const int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  const int one = 1;
  const int zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  a.sin6_addr = in6addr_any;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) die("bind");
  if (listen(fd, 4096) != 0) die("listen");
  return fd;
}

void echo_connection(int fd) {
  std::vector<char> buf(65536);
  for (;;) {
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0 || !write_all(fd, buf.data(), static_cast<size_t>(n))) break;
  }
  close(fd);
}

// Reads until EOF, then answers with the byte count (8 bytes, host order).
void sink_connection(int fd) {
  std::vector<char> buf(262144);
  uint64_t total = 0;
  for (;;) {
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    total += static_cast<uint64_t>(n);
  }
  write_all(fd, &total, sizeof(total));
  close(fd);
}

void accept_loop(int listener, void (*handler)(int)) {
  for (;;) {
    const int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
      die("accept");
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::thread(handler, fd).detach();
  }
}

// Accepts, says one byte, and keeps the connection idle until the client
// closes it: the far end of the idle-connection memory measurement, with no
// thread per connection.
void hold_loop(int listener) {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  std::thread([ep] {
    epoll_event events[256];
    for (;;) {
      const int n = epoll_wait(ep, events, 256, -1);
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        char buf[256];
        if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0) close(fd);  // closed by the client
      }
    }
  }).detach();
  for (;;) {
    const int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
      die("accept");
    }
    const char hello = 'h';
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    if (!write_all(fd, &hello, 1) || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) close(fd);
  }
}

int run_server(uint16_t echo_port, uint16_t sink_port, uint16_t hold_port) {
  raise_fd_limit();
  const int echo = listen_on(echo_port);
  const int sink = listen_on(sink_port);
  const int hold = listen_on(hold_port);
  std::thread(accept_loop, sink, sink_connection).detach();
  std::thread(hold_loop, hold).detach();
  std::cout << nlohmann::json{{"ready", true}}.dump() << std::endl;
  accept_loop(echo, echo_connection);
  return 0;
}

// ---- clients --------------------------------------------------------------

// Throughput counts what the server confirms it received. Some proxies
// (microsocks, tinyproxy) do not pass a half-close on, so the count never
// comes back; then the bytes sent are counted instead ("confirmed": false),
// which overstates by at most what the socket buffers held.
int run_bulk(const Target& t, unsigned streams, double seconds) {
  std::atomic<uint64_t> confirmed{0};
  std::atomic<uint64_t> sent_total{0};
  std::atomic<bool> all_confirmed{true};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  const auto stop_at = start + std::chrono::duration<double>(seconds);
  for (unsigned i = 0; i < streams; ++i) {
    threads.emplace_back([&] {
      const int fd = open_connection(t);
      if (fd < 0) die("bulk connect");
      std::vector<char> buf(262144, 'x');
      uint64_t sent = 0;
      while (Clock::now() < stop_at) {
        if (!write_all(fd, buf.data(), buf.size())) die("bulk send");
        sent += buf.size();
      }
      sent_total += sent;
      shutdown(fd, SHUT_WR);
      timeval tv{5, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      uint64_t total = 0;
      if (read_all(fd, &total, sizeof(total))) {
        confirmed += total;
      } else {
        all_confirmed = false;
      }
      close(fd);
    });
  }
  for (auto& th : threads) th.join();
  const double elapsed = std::chrono::duration<double>(stop_at - start).count();
  const uint64_t bytes = all_confirmed ? confirmed.load() : sent_total.load();
  std::cout << nlohmann::json{{"bytes", bytes},
                              {"confirmed", all_confirmed.load()},
                              {"seconds", elapsed},
                              {"gbit_per_s", static_cast<double>(bytes) * 8.0 / elapsed / 1e9}}
                   .dump()
            << std::endl;
  return 0;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

// Open loop: request i is due at start + i/rate whether or not earlier ones
// were answered; its latency counts from when it was due (no coordinated
// omission).
// Busy polling: one thread spins on the clock and on a non-blocking
// socket, sending each request when it is due and timing each response the
// moment it is there. Timer and wake-up latencies of a virtual machine
// (about 200 us here) would otherwise hide what a proxy adds; the price is
// one core spinning, the same for every path measured.
void rr_spin(int fd, size_t size, const std::vector<Clock::time_point>& due,
             std::vector<double>& latency_us) {
  const size_t total = due.size();
  const std::vector<char> chunk(std::max<size_t>(size, 65536), 'r');
  std::vector<char> sink(std::max<size_t>(size, 65536));
  uint64_t sent = 0;
  uint64_t received = 0;
  size_t requests_due = 0;
  size_t answered = 0;
  while (answered < total) {
    const auto now = Clock::now();
    while (requests_due < total && due[requests_due] <= now) ++requests_due;
    const uint64_t owed = static_cast<uint64_t>(requests_due) * size;
    if (sent < owed) {
      const ssize_t n = send(fd, chunk.data(), std::min<uint64_t>(owed - sent, chunk.size()),
                             MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<uint64_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) die("rr send");
    }
    const ssize_t n = recv(fd, sink.data(), sink.size(), MSG_DONTWAIT);
    if (n == 0) die("rr receive: connection closed");
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) die("rr receive");
    if (n <= 0) continue;
    received += static_cast<uint64_t>(n);
    const auto at = Clock::now();
    for (; answered < total && (answered + 1) * size <= received; ++answered) {
      latency_us[answered] = std::chrono::duration<double, std::micro>(at - due[answered]).count();
    }
  }
}

void rr_sleep(int fd, size_t size, const std::vector<Clock::time_point>& due,
              std::vector<double>& latency_us);

int run_rr(const Target& t, size_t size, double rate, double seconds, bool spin) {
  const int fd = open_connection(t);
  if (fd < 0) die("rr connect");
  const auto total = static_cast<size_t>(rate * seconds);
  std::vector<Clock::time_point> due(total);
  const auto start = Clock::now() + std::chrono::milliseconds(20);
  for (size_t i = 0; i < total; ++i)
    due[i] = start + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(static_cast<double>(i) / rate));
  std::vector<double> latency_us(total);
  if (spin) {
    rr_spin(fd, size, due, latency_us);
  } else {
    rr_sleep(fd, size, due, latency_us);
  }
  close(fd);
  std::cout << nlohmann::json{{"requests", total},
                              {"pacing", spin ? "spin" : "sleep"},
                              {"p50_us", percentile(latency_us, 0.50)},
                              {"p99_us", percentile(latency_us, 0.99)},
                              {"p999_us", percentile(latency_us, 0.999)}}
                   .dump()
            << std::endl;
  return 0;
}

// A sending and a receiving thread that sleep between requests.
void rr_sleep(int fd, size_t size, const std::vector<Clock::time_point>& due,
              std::vector<double>& latency_us) {
  const size_t total = due.size();
  std::thread receiver([&] {
    std::vector<char> buf(size);
    for (size_t i = 0; i < total; ++i) {
      if (!read_all(fd, buf.data(), size)) die("rr receive");
      latency_us[i] = std::chrono::duration<double, std::micro>(Clock::now() - due[i]).count();
    }
  });
  std::vector<char> request(size, 'r');
  for (size_t i = 0; i < total; ++i) {
    std::this_thread::sleep_until(due[i]);
    if (!write_all(fd, request.data(), size)) die("rr send");
  }
  receiver.join();
}

int run_connect(const Target& t, double seconds, unsigned threads_count) {
  std::atomic<uint64_t> done{0};
  std::atomic<uint64_t> failed{0};
  const auto start = Clock::now();
  const auto stop_at = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < threads_count; ++i) {
    threads.emplace_back([&] {
      char byte = 'c';
      while (Clock::now() < stop_at) {
        const int fd = open_connection(t);
        if (fd < 0) {
          ++failed;
          continue;
        }
        if (write_all(fd, &byte, 1) && read_all(fd, &byte, 1)) {
          ++done;
        } else {
          ++failed;
        }
        close(fd);
      }
    });
  }
  for (auto& th : threads) th.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::cout << nlohmann::json{{"connections", done.load()},
                              {"failed", failed.load()},
                              {"per_second", static_cast<double>(done.load()) / elapsed}}
                   .dump()
            << std::endl;
  return 0;
}

volatile std::sig_atomic_t stop_idle = 0;

int run_idle(const Target& t, unsigned count, const std::string& ready) {
  raise_fd_limit();
  std::vector<int> fds;
  fds.reserve(count);
  char byte = 'i';
  for (unsigned i = 0; i < count; ++i) {
    const int fd = open_connection(t);
    if (fd < 0) die("idle connect " + std::to_string(i));
    // The hold port's first byte: the proxy has its upstream connection.
    if (!read_all(fd, &byte, 1)) die("idle first byte");
    fds.push_back(fd);
  }
  std::signal(SIGTERM, [](int) { stop_idle = 1; });
  std::ofstream(ready) << count << "\n";
  while (!stop_idle) pause();
  for (int fd : fds) close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("shunt-bench: load generator and server for scripts/bench.sh");
  app.require_subcommand(1);
  std::string host;
  std::string proxy;
  std::string ready;
  uint16_t port = 9000;
  uint16_t echo_port = 9000;
  uint16_t sink_port = 9001;
  uint16_t hold_port = 9002;
  unsigned streams = 1;
  unsigned threads = 2;
  unsigned count = 1000;
  size_t size = 64;
  double rate = 1000;
  double seconds = 3;
  auto* server = app.add_subcommand("server", "echo and sink server (IPv4 and IPv6)");
  server->add_option("--echo-port", echo_port, "echo port")->capture_default_str();
  server->add_option("--sink-port", sink_port, "sink port (answers the byte count)")
      ->capture_default_str();
  server->add_option("--hold-port", hold_port, "hold port (one byte, then idle)")
      ->capture_default_str();
  auto add_target = [&](CLI::App* cmd) {
    cmd->add_option("--host", host, "server IP address")->required();
    cmd->add_option("--port", port, "server port")->capture_default_str();
    cmd->add_option("--proxy", proxy, "socks5://IP:PORT or connect://IP:PORT");
  };
  auto* bulk = app.add_subcommand("bulk", "throughput to the sink port");
  add_target(bulk);
  bulk->add_option("--streams", streams, "parallel connections")->capture_default_str();
  bulk->add_option("--seconds", seconds, "duration")->capture_default_str();
  auto* rr = app.add_subcommand("rr", "open-loop request/response latency on the echo port");
  add_target(rr);
  rr->add_option("--size", size, "request and response size in bytes")->capture_default_str();
  rr->add_option("--rate", rate, "requests per second")->capture_default_str();
  rr->add_option("--seconds", seconds, "duration")->capture_default_str();
  std::string pacing = "spin";
  rr->add_option("--pacing", pacing,
                 "spin (one busy-polling thread: no timer or wake-up latency) or sleep "
                 "(a sending and a receiving thread that sleep)")
      ->check(CLI::IsMember({"spin", "sleep"}))
      ->capture_default_str();
  auto* conn = app.add_subcommand("connect", "new connections per second (1-byte round trip)");
  add_target(conn);
  conn->add_option("--seconds", seconds, "duration")->capture_default_str();
  conn->add_option("--threads", threads, "client threads")->capture_default_str();
  auto* idle = app.add_subcommand("idle", "hold idle connections to the hold port until SIGTERM");
  add_target(idle);
  idle->add_option("--count", count, "connections")->capture_default_str();
  idle->add_option("--ready", ready, "file written once all are open")->required();
  CLI11_PARSE(app, argc, argv);
  if (*server) return run_server(echo_port, sink_port, hold_port);
  const Target t = parse_target(host, port, proxy);
  if (*bulk) return run_bulk(t, streams, seconds);
  if (*rr) return run_rr(t, size, rate, seconds, pacing == "spin");
  if (*conn) return run_connect(t, seconds, threads);
  return run_idle(t, count, ready);
}
