-- Loquat user commands. The module (lua/loquat) is loaded on first use.
if vim.g.loaded_loquat then
  return
end
vim.g.loaded_loquat = true

local function loquat()
  return require("loquat")
end

local command = vim.api.nvim_create_user_command

command("LoquatStart", function()
  loquat().start()
end, { nargs = 0, desc = "Start loquatd (other commands start it when needed)" })

command("LoquatStop", function()
  loquat().stop()
end, { nargs = 0, desc = "shutdown + exit loquatd" })

command("LoquatCancel", function()
  loquat().cancel()
end, { nargs = 0, desc = "$/cancelRequest for every request in flight" })

command("LoquatLoad", function(opts)
  loquat().load(opts.fargs[1], opts.fargs[2])
end, { nargs = "+", complete = "file", desc = "Load a model: {path} [name]" })

command("LoquatQuantize", function(opts)
  local l = loquat()
  local args, options = l.parse_args(opts.fargs)
  l.quantize(args[1], args[2], options)
end, {
  nargs = "+",
  complete = function(...)
    return loquat().complete_quantizers(...)
  end,
  desc = "Quantize the last loaded model: {method} [bits] [key=value ...]",
})

command("LoquatInitAdapter", function(opts)
  local l = loquat()
  local args, options = l.parse_args(opts.fargs)
  l.init_adapter(args[1], args[2], options)
end, {
  nargs = "+",
  complete = function(...)
    return loquat().complete_init_methods(...)
  end,
  desc = "LoRA init on the last quantized model: {method} {rank} [key=value ...]",
})

command("LoquatEvaluate", function(opts)
  local l = loquat()
  local args, options = l.parse_args(opts.fargs)
  l.evaluate(args[1], options)
end, {
  nargs = "*",
  complete = function(...)
    return loquat().complete_metrics(...)
  end,
  desc = "weightError of the last quantized model, or perplexity of a Llama model on this buffer",
})

command("LoquatInfo", function(opts)
  loquat().info(opts.fargs[1])
end, {
  nargs = "?",
  complete = function(...)
    return loquat().complete_models(...)
  end,
  desc = "What is resident (or: the tensors of {model})",
})

vim.api.nvim_create_autocmd("VimLeavePre", {
  group = vim.api.nvim_create_augroup("loquat", { clear = true }),
  callback = function()
    if package.loaded["loquat"] then
      require("loquat").shutdown_now()
    end
  end,
})
