// Step 2 of shipping a WSNet model without Python: a C++ program that loads wsnet_ext's kernels
// library (its op registrations run as it loads: it needs only libtorch, no Python), loads the
// AOTInductor package that export_model.py wrote, runs it on the example input and writes the
// output (raw float32) and prints it.
//
//   run_model KERNELS_LIBRARY MODEL.pt2 INPUT OUTPUT
//   (INPUT / OUTPUT: paths without the .bin / .shape suffixes that export_model.py uses)
//
// Links libtorch (torch, torch_cpu, c10) and nothing of Python; build with build.py.
#include <dlfcn.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/torch.h>

namespace {

at::Tensor read_tensor(const std::string& path) {
  std::ifstream shape_file(path + ".shape");
  std::vector<int64_t> sizes;
  for (int64_t size; shape_file >> size;) sizes.push_back(size);
  at::Tensor tensor = torch::empty(sizes, torch::kFloat32);
  std::ifstream data(path + ".bin", std::ios::binary);
  data.read(reinterpret_cast<char*>(tensor.data_ptr<float>()), tensor.numel() * sizeof(float));
  if (!data) throw std::runtime_error("could not read " + path + ".bin as " + std::to_string(tensor.numel()) + " floats");
  return tensor;
}

void write_tensor(const std::string& path, const at::Tensor& value) {
  const at::Tensor tensor = value.to(torch::kFloat32).contiguous();
  std::ofstream data(path + ".bin", std::ios::binary);
  data.write(reinterpret_cast<const char*>(tensor.data_ptr<float>()), tensor.numel() * sizeof(float));
  std::ofstream shape(path + ".shape");
  for (int64_t i = 0; i < tensor.dim(); ++i) shape << (i ? " " : "") << tensor.size(i);
  shape << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: " << argv[0] << " KERNELS_LIBRARY MODEL.pt2 INPUT OUTPUT\n";
    return 2;
  }
  // wsnet_ext's ops register with PyTorch's dispatcher as the library loads (stable ABI: it loads
  // beside any libtorch >= 2.10)
  if (dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    std::cerr << "could not load " << argv[1] << ": " << dlerror() << "\n";
    return 1;
  }
  try {
    torch::inductor::AOTIModelPackageLoader loader(argv[2]);
    const std::vector<at::Tensor> outputs = loader.run({read_tensor(argv[3])});
    write_tensor(argv[4], outputs.at(0));
    std::cout << "output " << outputs.at(0).sizes() << ":\n" << outputs.at(0) << "\n";
  } catch (const std::exception& error) {
    std::cerr << "run_model failed: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
