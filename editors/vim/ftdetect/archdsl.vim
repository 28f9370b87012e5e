" .arch files are archdsl specs (editors/vim: add this folder to 'runtimepath'; docs/editors.md).
autocmd BufNewFile,BufRead *.arch setfiletype archdsl
