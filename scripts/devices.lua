-- refract devices: list the Vulkan devices with their memory and compute features
local refract = require("refract")

local function mib(bytes) return string.format("%.0f MiB", bytes / 2^20) end
local function yes(b) return b and "yes" or "no" end

for _, d in ipairs(refract.devices()) do
  print(string.format("[%d] %s (%s)", d.index, d.name, d.type))
  print(string.format("    driver %s, Vulkan %s", d.driver, d.api_version))
  print(string.format("    device-local heap %s (refract uses up to %s), storage binding up to %s",
    mib(d.heap_bytes), mib(d.budget_bytes), mib(d.max_storage_range)))
  print(string.format("    subgroup %d, shared memory %d KiB, fp16 %s, 16-bit storage %s, cooperative matrix %s",
    d.subgroup_size, d.shared_memory // 1024, yes(d.fp16), yes(d.storage16), yes(d.cooperative_matrix)))
end
print("REFRACT_DEVICE=<index or name> picks one; by default: discrete GPU, then integrated, then CPU.")
