// common/asio.h — the one place rangekv includes Boost.Asio.
//
// Boost 1.74's boost/asio/awaitable.hpp uses std::exchange without including
// <utility>; including it first here keeps every user correct under g++ 12.
#pragma once

#include <utility>

#include <boost/asio.hpp>

namespace rangekv {
namespace asio = boost::asio;
}  // namespace rangekv
