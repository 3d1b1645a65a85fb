-- refract demo: the main job: list the devices and run an end-to-end check on the chosen one
local refract = require("refract")

print("refract " .. refract.version)
dofile(refract.home() .. "/scripts/devices.lua")
print("")
dofile(refract.home() .. "/scripts/check.lua")
