#include "quiver/coordinator/partition_map.h"

#include <algorithm>
#include <numeric>
#include <unordered_map>

namespace quiver::coordinator {
namespace {

// Targets summing to `total`, floor or ceil of total / n each; the ceilings go
// to the nodes holding the most already, so that fewer slots move.
std::vector<int64_t> Targets(const std::vector<int64_t>& have, int64_t total) {
  const size_t n = have.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return have[a] > have[b]; });
  std::vector<int64_t> target(n, total / static_cast<int64_t>(n));
  const int64_t extra = total % static_cast<int64_t>(n);
  for (int64_t i = 0; i < extra; ++i) ++target[order[i]];
  return target;
}

bool Contains(const std::vector<size_t>& v, size_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

Assignment AssignPartitions(const Assignment& current, uint32_t num_partitions,
                            std::vector<uint32_t> node_ids, uint32_t replication_factor) {
  std::sort(node_ids.begin(), node_ids.end());
  node_ids.erase(std::unique(node_ids.begin(), node_ids.end()), node_ids.end());
  if (node_ids.empty() || num_partitions == 0) return {};
  const size_t n = node_ids.size();
  const size_t r = std::min<size_t>(std::max<uint32_t>(replication_factor, 1), n);
  std::unordered_map<uint32_t, size_t> index;
  for (size_t i = 0; i < n; ++i) index[node_ids[i]] = i;

  // Work on node indices; keep what is still valid of the current assignment.
  std::vector<std::vector<size_t>> parts(num_partitions);
  std::vector<int64_t> load(n, 0);
  for (uint32_t p = 0; p < num_partitions && p < current.size(); ++p) {
    for (uint32_t id : current[p]) {
      auto it = index.find(id);
      if (it == index.end() || Contains(parts[p], it->second) || parts[p].size() >= r) continue;
      parts[p].push_back(it->second);
      ++load[it->second];
    }
  }
  const std::vector<int64_t> target = Targets(load, int64_t{num_partitions} * int64_t(r));

  // The node (not in `exclude`) furthest below its target; ties: lowest index.
  auto most_under = [&](const std::vector<size_t>& exclude, bool strictly_under) -> size_t {
    size_t best = n;
    for (size_t i = 0; i < n; ++i) {
      if (Contains(exclude, i) || (strictly_under && load[i] >= target[i])) continue;
      if (best == n || load[i] - target[i] < load[best] - target[best]) best = i;
    }
    return best;
  };

  // Fill missing slots.
  for (auto& part : parts) {
    while (part.size() < r) {
      const size_t u = most_under(part, false);
      part.push_back(u);
      ++load[u];
    }
  }
  // Move slots from nodes above target to nodes below it. Each move lowers the
  // total excess, and a move always exists while some node is above target (it
  // holds more partitions than an under-target node, so some partition has the
  // first and not the second).
  for (bool moved = true; moved;) {
    moved = false;
    for (auto& part : parts) {
      for (auto& slot : part) {
        if (load[slot] <= target[slot]) continue;
        const size_t u = most_under(part, true);
        if (u == n) continue;
        --load[slot];
        ++load[u];
        slot = u;
        moved = true;
      }
    }
  }
  // Spread preferred replicas by reordering within partitions (no data moves).
  std::vector<int64_t> first(n, 0);
  for (const auto& part : parts) ++first[part[0]];
  const std::vector<int64_t> first_target = Targets(first, num_partitions);
  for (bool moved = true; moved;) {
    moved = false;
    for (auto& part : parts) {
      const size_t o = part[0];
      if (first[o] <= first_target[o]) continue;
      size_t best = 0;
      for (size_t j = 1; j < part.size(); ++j) {
        const size_t u = part[j];
        if (first[u] >= first_target[u]) continue;
        if (best == 0 || first[u] - first_target[u] < first[part[best]] - first_target[part[best]]) {
          best = j;
        }
      }
      if (best == 0) continue;
      --first[o];
      ++first[part[best]];
      std::swap(part[0], part[best]);
      moved = true;
    }
  }

  // Greedy swaps can get stuck (no partition led by an over-target node holds
  // an under-target one); then shift along a chain: o leads p1 which holds x,
  // x leads p2 which holds u, ... Each chain moves one lead from o to u.
  for (;;) {
    std::vector<int64_t> edge(n * n, -1);  // edge[a * n + b]: a partition led by a holding b
    for (size_t p = 0; p < parts.size(); ++p) {
      const size_t a = parts[p][0];
      for (size_t j = 1; j < parts[p].size(); ++j) {
        if (edge[a * n + parts[p][j]] < 0) edge[a * n + parts[p][j]] = static_cast<int64_t>(p);
      }
    }
    std::vector<size_t> parent(n, n), queue;
    std::vector<bool> seen(n, false);
    for (size_t i = 0; i < n; ++i) {
      if (first[i] > first_target[i]) {
        seen[i] = true;
        queue.push_back(i);
      }
    }
    size_t found = n;
    for (size_t head = 0; head < queue.size() && found == n; ++head) {
      const size_t a = queue[head];
      for (size_t b = 0; b < n; ++b) {
        if (seen[b] || edge[a * n + b] < 0) continue;
        seen[b] = true;
        parent[b] = a;
        if (first[b] < first_target[b]) {
          found = b;
          break;
        }
        queue.push_back(b);
      }
    }
    if (found == n) break;
    for (size_t b = found; parent[b] != n; b = parent[b]) {
      auto& part = parts[edge[parent[b] * n + b]];
      std::swap(part[0], *std::find(part.begin(), part.end(), b));
      --first[parent[b]];
      ++first[b];
    }
  }

  Assignment out(num_partitions);
  for (uint32_t p = 0; p < num_partitions; ++p) {
    for (size_t i : parts[p]) out[p].push_back(node_ids[i]);
  }
  return out;
}

}  // namespace quiver::coordinator
