#pragma once
// A model whose forward pass runs on another device (the CUDA backend, kernels/cuda/device_model.h):
// Model::forward hands the pass to it, and its KV caches live on that device. Defined here as plain
// interfaces so core/ sees no CUDA type; the implementation is linked from kernels/cuda/.
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "kernels/ops.h"

namespace specula {

class KvCache;
class Model;
struct ExecPlan;
struct Logits;
struct ForwardOptions;

// Where a model's forward pass runs. CudaEmulated runs the CUDA backend's exact sequence of launches
// and GEMMs on the host (kernels/cuda/exec_host.cpp): for tests, far too slow for anything else.
enum class Device : uint8_t { Cpu, Cuda, CudaEmulated };
Device parse_device(const std::string& s);  // "cpu" | "cuda"; Error naming the value otherwise
const char* to_string(Device d);

// The keys/values of a KvCache held on a device (slot positions stay in the host KvCache). It uses its
// model's device context: a device cache must not outlive the model that made it.
class KvDeviceStore {
 public:
  virtual ~KvDeviceStore() = default;
  virtual std::unique_ptr<KvDeviceStore> clone() const = 0;
  // Copies slot src's keys/values (every layer) to slot dst.
  virtual void move_slot(int64_t src, int64_t dst) = 0;
};

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  virtual std::string name() const = 0;  // e.g. "cuda (NVIDIA H200)"
  virtual std::unique_ptr<KvDeviceStore> make_kv(int64_t capacity, KvDType dtype) = 0;
  // Same contract as Model::forward.
  virtual void forward(std::span<const int32_t> tokens, std::span<const int32_t> positions, KvCache& cache,
                       const ExecPlan* plan, Logits& out, const ForwardOptions& fo) = 0;
};

// Implemented in kernels/cuda/device_model.cpp: uploads `model`'s weights. Error (one line, naming why)
// when the device is not usable. `model` must outlive the backend.
std::unique_ptr<DeviceBackend> make_device_backend(Model& model, Device d);

}  // namespace specula
