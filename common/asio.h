// common/asio.h — the one place rangekv includes Boost.Asio.
//
// Boost 1.74's boost/asio/awaitable.hpp uses std::exchange without including
// <utility>; including it first here keeps every user correct under g++ 12.
//
// Boost 1.74 turns on co_await under clang only for libc++'s
// <experimental/coroutine>; clang 14 with libstdc++'s <coroutine> (the
// RANGEKV_THREAD_SAFETY build) supports it the way g++ does, so say so.
#pragma once

#include <utility>

#if defined(__clang__) && __cplusplus >= 202002L && defined(__cpp_impl_coroutine) && \
    __has_include(<coroutine>)
#ifndef BOOST_ASIO_HAS_CO_AWAIT
#define BOOST_ASIO_HAS_CO_AWAIT 1
#endif
#ifndef BOOST_ASIO_HAS_STD_COROUTINE
#define BOOST_ASIO_HAS_STD_COROUTINE 1
#endif
#endif

#include <boost/asio.hpp>

namespace rangekv {
namespace asio = boost::asio;
}  // namespace rangekv
