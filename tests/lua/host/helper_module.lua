-- A module next to the script that requires it (test_host.lua checks `require` finds it).
return { answer = 42 }
