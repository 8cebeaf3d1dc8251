import{a,b,c,d,e,f}from"./chunk-UDDSAFQC.js";import"./app-64ENSQTF.js";export{f as Overview,d as SummaryCharts,e as Totals,c as WindowPicker,b as summaryPath,a as windows};
