# Google Benchmark micro-benchmarks. Run by hand; numbers go into NOTES.md.
find_package(benchmark REQUIRED)

# wal_bench: RangeStore put throughput per fsync policy, 1 vs many writers.
add_executable(wal_bench ${CMAKE_CURRENT_SOURCE_DIR}/wal_bench.cc)
target_link_libraries(wal_bench PRIVATE rangekv::storage benchmark::benchmark)
