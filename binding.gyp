{
  "targets": [
    {
      "target_name": "sealed_session",
      "sources": [
        "native/addon/addon.cc",
        "native/addon/glue.cc",
        "native/addon/key_ring_wrap.cc",
        "native/addon/private_dir_wrap.cc",
        "native/core/cas.cc",
        "native/core/crypto.cc",
        "native/core/crypto_cng.cc",
        "native/core/crypto_openssl.cc",
        "native/core/envelope.cc",
        "native/core/errors.cc",
        "native/core/keychain.cc",
        "native/core/keys.cc",
        "native/core/machine_id.cc",
        "native/core/nowait.cc",
        "native/core/private_dir.cc",
        "native/core/private_dir_common.cc",
        "native/core/private_dir_win.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0",
        "OTHER_LDFLAGS": ["-framework IOKit", "-framework CoreFoundation", "-framework Security"]
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"] }
      },
      "conditions": [
        ["OS=='win'", { "libraries": ["advapi32.lib", "bcrypt.lib"] }],
        ["OS=='linux'", { "libraries": ["-ldl"] }]
      ]
    }
  ]
}
